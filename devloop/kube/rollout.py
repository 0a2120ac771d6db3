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
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from devloop import events
from devloop.kube.client import Kube
from devloop.kube.errors import KubeError
from devloop.kube.watching import watch_objects
from devloop.waits import within

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


class RolloutWatch:
    """The watches a rollout is followed with: the Deployment's ReplicaSets and pods, and
    the namespace's events, merged into one stream.

    Opened before the change that starts the rollout (the pump tasks start at once), so
    the new ReplicaSet and its pod are seen as they appear instead of being looked up one
    after the other once the restart has landed. Close it with `close()`.
    """

    def __init__(self, kube: Kube, match_labels: dict[str, str]) -> None:
        selector = selector_string(match_labels)
        sources = {
            "rs": watch_objects(kube, "ReplicaSet", label_selector=selector),
            "pod": watch_objects(kube, "Pod", label_selector=selector),
            "event": watch_objects(kube, "Event"),
        }
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | BaseException] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._pump(tag, s)) for tag, s in sources.items()]

    async def _pump(self, tag: str, source: AsyncIterator[tuple[str, dict[str, Any]]]) -> None:
        try:
            async for kind, obj in source:
                self.queue.put_nowait((tag, kind, obj))
        except BaseException as exc:  # surfaced to the consumer
            self.queue.put_nowait(exc)

    def __aiter__(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        return self._items()

    async def _items(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task


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
    watch: RolloutWatch | None = None,
) -> RolloutResult:
    """Report the new pod's progress until Ready, a failure, or `timeout` seconds.
    `edited_at` (wall clock) is when the save that caused it happened, if known. `watch`,
    opened before the change, is used (not closed); without it one is opened here."""
    t0 = started if started is not None else time.monotonic()
    own = watch is None
    if watch is None:
        watch = RolloutWatch(kube, deployment["spec"]["selector"].get("matchLabels") or {})
    try:
        return await within(
            _follow(kube, deployment, emit, t0, watch, on_started, edited_at), timeout
        )
    except TimeoutError:
        failure = events.RolloutFailed(
            "", "Timeout", f"the new pod was not Ready after {timeout:g}s"
        )
        emit(failure)
        return RolloutResult(False, failure=failure)
    finally:
        if own:
            await watch.close()


HELD_EVENTS = 200  # events not (yet) about the new ReplicaSet or its pods


async def _follow(
    kube: Kube,
    deployment: dict[str, Any],
    emit: Emit,
    t0: float,
    watch: RolloutWatch,
    on_started: Callable[[str], None] | None,
    edited_at: float | None = None,
) -> RolloutResult:
    state = _PodWatch()
    rs: dict[str, Any] | None = None  # the new ReplicaSet, once seen
    held_pods: dict[str, tuple[str, dict[str, Any]]] = {}  # seen before it
    held_events: deque[dict[str, Any]] = deque(maxlen=HELD_EVENTS)

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
        return RolloutResult(False, pod, rs_name(), ms(), failure)

    def rs_name() -> str:
        return rs["metadata"]["name"] if rs else ""

    def ours(pod: dict[str, Any]) -> bool:
        labels = pod["metadata"].get("labels") or {}
        assert rs is not None
        wanted = rs["metadata"]["labels"].get("pod-template-hash")
        return bool(labels.get("pod-template-hash") == wanted)

    async def on_pod(kind: str, obj: dict[str, Any]) -> RolloutResult | None:
        if kind == "DELETED" or not ours(obj):
            return None
        name = obj["metadata"]["name"]
        state.pods.add(name)
        step(name, "created")
        status = obj.get("status") or {}
        conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
        if conditions.get("PodScheduled") == "True":
            step(name, "scheduled", (obj.get("spec") or {}).get("nodeName", ""))
        if obj["metadata"]["uid"] not in state.uids:
            state.uids.add(obj["metadata"]["uid"])
            if result := await replay_events():  # what the cluster said of it meanwhile
                return result
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
            emit(events.PodReady(name, rs_name(), elapsed, since_edit))
            return RolloutResult(True, name, rs_name(), elapsed)
        return None

    async def on_event(obj: dict[str, Any]) -> RolloutResult | None:
        involved = obj.get("involvedObject") or {}
        if rs is None or involved.get("uid") not in state.uids | {rs["metadata"]["uid"]}:
            held_events.append(obj)  # its pod may not have been seen yet
            return None
        reason, message = obj.get("reason", ""), obj.get("message", "")
        pod = involved.get("name", "")
        if reason == "Pulled":
            step(pod, "pulled", message)
        elif reason in ("FailedMount", "FailedCreate", "FailedScheduling"):
            return await fail(pod if reason != "FailedCreate" else rs_name(), reason, message)
        elif obj.get("type") == "Warning" and reason not in ("BackOff", "Failed"):
            state.last_warning = f"{reason}: {message}"
            emit(events.PodProgress(pod, "warning", state.last_warning, ms()))
        return None

    async def replay_events() -> RolloutResult | None:
        for _ in range(len(held_events)):
            if result := await on_event(held_events.popleft()):
                return result
        return None

    async for tag, kind, obj in watch:
        result: RolloutResult | None = None
        if tag == "rs":
            if rs is None and kind != "DELETED" and is_new_replica_set(obj, deployment):
                rs = obj
                result = await replay_events()
                for held_kind, pod in list(held_pods.values()):
                    result = result or await on_pod(held_kind, pod)
                held_pods.clear()
        elif tag == "pod":
            if rs is None:
                held_pods[obj["metadata"]["name"]] = (kind, obj)
            else:
                result = await on_pod(kind, obj)
        else:
            result = await on_event(obj)
        if result is not None:
            return result
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
