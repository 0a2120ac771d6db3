"""Follow the rollout a deploy cycle started, by watching (not polling) until the new pod
is Ready or fails with the cluster's own reason.

The new ReplicaSet is the one owned by the Deployment whose pod template equals the
Deployment's current template (ignoring `pod-template-hash`), as kubectl identifies it;
its pods carry its hash, so an old pod is never mistaken for the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from devloop import events
from devloop.kube.client import Kube
from devloop.kube.errors import KubeError
from devloop.kube.watching import watch_objects

Emit = Callable[[events.Event], None]
FAILING_WAIT_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
}
LAST_LOG_LINES = 20


@dataclass
class RolloutResult:
    ok: bool
    pod: str = ""
    replica_set: str = ""
    ms: float = 0
    failure: events.RolloutFailed | None = None


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop("pod-template-hash", None)
    meta = {**(template.get("metadata") or {}), "labels": labels}
    return {**template, "metadata": meta}


def is_new_replica_set(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    owners = rs["metadata"].get("ownerReferences") or []
    owned = any(o.get("uid") == deployment["metadata"]["uid"] for o in owners)
    return owned and without_hash(rs["spec"]["template"]) == without_hash(
        deployment["spec"]["template"]
    )


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


@dataclass
class _PodWatch:
    """What has been reported for the new pod, so each step is told once."""

    reported: set[str] = field(default_factory=set)
    pods: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    last_warning: str = ""


async def _merge(
    *sources: AsyncIterator[tuple[str, str, dict[str, Any]]],
) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | BaseException] = asyncio.Queue()

    async def pump(source: AsyncIterator[tuple[str, str, dict[str, Any]]]) -> None:
        try:
            async for item in source:
                await queue.put(item)
        except BaseException as exc:  # surfaced to the consumer
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(s)) for s in sources]
    try:
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


async def _tagged(
    tag: str, source: AsyncIterator[tuple[str, dict[str, Any]]]
) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
    async for kind, obj in source:
        yield tag, kind, obj


async def find_new_replica_set(kube: Kube, deployment: dict[str, Any]) -> dict[str, Any]:
    selector = selector_string(deployment["spec"]["selector"].get("matchLabels") or {})
    async for _, rs in watch_objects(kube, "ReplicaSet", label_selector=selector):
        if is_new_replica_set(rs, deployment):
            return rs
    raise KubeError("the ReplicaSet watch ended")  # watch_objects never ends on its own


async def follow_rollout(
    kube: Kube,
    deployment: dict[str, Any],
    emit: Emit,
    timeout: float = 120,
    started: float | None = None,
    on_started: Callable[[str], None] | None = None,
    edited_at: float | None = None,
) -> RolloutResult:
    """Report the new pod's progress until Ready, a failure, or `timeout` seconds.
    `edited_at` (wall clock) is when the save that caused it happened, if known."""
    t0 = started if started is not None else time.monotonic()
    try:
        return await asyncio.wait_for(
            _follow(kube, deployment, emit, t0, on_started, edited_at), timeout
        )
    except TimeoutError:
        failure = events.RolloutFailed(
            "", "Timeout", f"the new pod was not Ready after {timeout:g}s"
        )
        emit(failure)
        return RolloutResult(False, failure=failure)


async def _follow(
    kube: Kube,
    deployment: dict[str, Any],
    emit: Emit,
    t0: float,
    on_started: Callable[[str], None] | None,
    edited_at: float | None = None,
) -> RolloutResult:
    rs = await find_new_replica_set(kube, deployment)
    rs_name = rs["metadata"]["name"]
    rs_uid = rs["metadata"]["uid"]
    template_hash = rs["metadata"]["labels"].get("pod-template-hash", "")
    selector = selector_string(
        {
            **deployment["spec"]["selector"].get("matchLabels", {}),
            "pod-template-hash": template_hash,
        }
    )
    state = _PodWatch()

    def ms() -> float:
        return (time.monotonic() - t0) * 1000

    def step(pod: str, name: str, detail: str = "") -> None:
        key = f"{pod}/{name}"
        if key not in state.reported:
            state.reported.add(key)
            emit(events.PodProgress(pod, name, detail, ms()))

    async def fail(pod: str, reason: str, message: str, crashed: bool = False) -> RolloutResult:
        logs: tuple[str, ...] = ()
        if crashed:
            logs = await _last_logs(kube, pod)
        failure = events.RolloutFailed(pod, reason, message, logs)
        emit(failure)
        return RolloutResult(False, pod, rs_name, ms(), failure)

    async for tag, kind, obj in _merge(
        _tagged("pod", watch_objects(kube, "Pod", label_selector=selector)),
        _tagged("event", watch_objects(kube, "Event")),
    ):
        if tag == "pod":
            if kind == "DELETED":
                continue
            name = obj["metadata"]["name"]
            state.pods.add(name)
            state.uids.add(obj["metadata"]["uid"])
            step(name, "created")
            status = obj.get("status") or {}
            conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
            if conditions.get("PodScheduled") == "True":
                step(name, "scheduled", (obj.get("spec") or {}).get("nodeName", ""))
            for cs in status.get("containerStatuses") or []:
                state_ = cs.get("state") or {}
                if "running" in state_:
                    if f"{name}/started" not in state.reported and on_started:
                        on_started(name)
                    step(name, "started")
                waiting = state_.get("waiting") or {}
                if waiting.get("reason") in FAILING_WAIT_REASONS:
                    return await fail(
                        name,
                        waiting["reason"],
                        waiting.get("message", ""),
                        crashed=waiting["reason"] == "CrashLoopBackOff",
                    )
            if conditions.get("Ready") == "True":
                elapsed = ms()
                since_edit = (time.time() - edited_at) * 1000 if edited_at else None
                emit(events.PodReady(name, rs_name, elapsed, since_edit))
                return RolloutResult(True, name, rs_name, elapsed)
        else:
            involved = obj.get("involvedObject") or {}
            if involved.get("uid") not in state.uids | {rs_uid}:
                continue
            reason, message = obj.get("reason", ""), obj.get("message", "")
            pod = involved.get("name", "")
            if reason == "Pulled":
                step(pod, "pulled", message)
            elif reason in ("FailedMount", "FailedCreate", "FailedScheduling"):
                return await fail(pod if reason != "FailedCreate" else rs_name, reason, message)
            elif obj.get("type") == "Warning" and reason not in ("BackOff", "Failed"):
                state.last_warning = f"{reason}: {message}"
                emit(events.PodProgress(pod, "warning", state.last_warning, ms()))
    raise KubeError("the rollout watch ended")


async def _last_logs(kube: Kube, pod: str) -> tuple[str, ...]:
    """The crashed container's last lines: the previous run's, else the current one's."""
    for previous in (True, False):
        try:
            text = await kube.pod_log(pod, previous=previous, tail_lines=LAST_LOG_LINES)
        except KubeError:
            continue
        if text.strip():
            return tuple(text.rstrip("\n").split("\n"))
    return ()
