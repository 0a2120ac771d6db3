"""Follow the rollout a deploy cycle started, by watching (not polling) until the new pod
is Ready or fails with the cluster's own reason.

The new ReplicaSet is the one owned by the Deployment whose pod template equals the
Deployment's current template (ignoring `pod-template-hash`), as kubectl identifies it;
its pods carry its hash, so an old pod is never mistaken for the new one.

What counts as failed follows what a real kubelet and controller do:
- a container that terminates has failed, at its first termination: the kubelet restarts
  it at once and only shows CrashLoopBackOff after the second exit, 10 s later at best;
- an image that cannot be pulled, or a container that cannot be created, has failed;
- FailedCreate (e.g. a ServiceAccount not there yet after --create-namespace),
  FailedScheduling and FailedMount are often transient: shown as "waiting", they fail
  the rollout only through the Deployment's ProgressDeadlineExceeded or the timeout;
- a paused Deployment rolls nothing out: said at once, with the command that resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devloop import events
from devloop.kube import informers, plan
from devloop.kube.client import FIELD_MANAGER, Kube
from devloop.kube.errors import KubeError, Vanished
from devloop.waits import within

Emit = Callable[[events.Event], None]
FAILING_WAIT_REASONS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
}
TRANSIENT_EVENT_REASONS = {"FailedCreate", "FailedScheduling", "FailedMount"}
LAST_LOG_LINES = 20


@dataclass
class RolloutResult:
    ok: bool
    pod: str = ""
    replica_set: str = ""
    ms: float = 0
    failure: events.RolloutFailed | None = None
    superseded_by: str = ""  # who changed the pod template while it rolled out


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


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def termination(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The engine container's termination, current or last: a crash, at its first exit."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (cs.get("state") or {}).get("terminated") or (
            (cs.get("lastState") or {}).get("terminated")
        )
        if terminated:
            return dict(terminated)
    return None


def crash_message(terminated: dict[str, Any]) -> tuple[str, str]:
    """(reason, message) of a terminated container, e.g. ("OOMKilled", "exit code 137 …")."""
    reason = terminated.get("reason") or "Error"
    code = terminated.get("exitCode")
    text = f"the engine exited with code {code}" if code is not None else "the engine exited"
    if reason == "OOMKilled":
        text += " (killed for using more memory than its limit)"
    if terminated.get("message"):
        text += f": {terminated['message']}"
    return reason, text


# A container stopped by the kubelet: SIGTERM (the engine has no handler), or SIGKILL
# after the grace period.
KILLED_EXIT_CODES = (143, 137)


def liveness_kill(last_failure: str) -> tuple[str, str]:
    """(reason, message) of a container the kubelet stopped because its liveness probe
    kept failing (its event: "Container … failed liveness probe, will be restarted"): that,
    not the exit code it was stopped with, is what happened."""
    return "Unhealthy", f"the kubelet restarted the engine: {last_failure}"


class RolloutWatch:
    """What a rollout is followed with: the Deployment, its ReplicaSets and pods, and the
    namespace's new events, from the session's shared watches (informers.py), merged into
    one stream.

    Opened before the change that starts the rollout, so the new ReplicaSet and its pod are
    seen as they appear; opening it sends no request (the watches are the session's). The
    objects already known come first, as a list would give them; events start from now.
    Close it with `close()`.
    """

    def __init__(self, kube: Kube, deployment: str, match_labels: dict[str, str]) -> None:
        shared = informers.of(kube)

        def selected(obj: dict[str, Any]) -> bool:
            return informers.carries(obj, match_labels)

        sources = {
            "deployment": (
                shared.informer("Deployment"),
                lambda obj: obj["metadata"].get("name") == deployment,
                True,
            ),
            "rs": (shared.informer("ReplicaSet"), selected, True),
            "pod": (shared.informer("Pod"), selected, True),
            "event": (shared.informer("Event"), lambda _: True, False),
        }
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | BaseException] = asyncio.Queue()
        self.subscriptions: list[informers.Subscription] = []
        self.tasks = [
            asyncio.create_task(self._pump(tag, *source)) for tag, source in sources.items()
        ]

    async def _pump(
        self,
        tag: str,
        informer: informers.Informer,
        wants: Callable[[dict[str, Any]], bool],
        replay: bool,
    ) -> None:
        try:
            subscription = await informer.subscribe(wants, replay)
            self.subscriptions.append(subscription)
            async for kind, obj in subscription:
                if kind != "SYNCED":
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
        for subscription in self.subscriptions:
            subscription.close()


async def serving_pod(kube: Kube, deployment: dict[str, Any]) -> str:
    """The Ready pod of the Deployment's newest ReplicaSet (what serves its template), or
    "" when there is none."""
    shared = informers.of(kube)
    selector = deployment["spec"]["selector"].get("matchLabels") or {}
    replica_sets = await shared.items("ReplicaSet", selector)
    newest = [rs for rs in replica_sets if is_new_replica_set(rs, deployment)]
    if not newest:
        return ""
    rs_hash = newest[0]["metadata"]["labels"].get("pod-template-hash", "")
    pods = await shared.items("Pod", {**selector, "pod-template-hash": rs_hash})
    ready = [p for p in pods if is_ready(p)]
    ready.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
    return str(ready[-1]["metadata"]["name"]) if ready else ""


async def ready_pod(
    kube: Kube, match_labels: dict[str, str], template_hash: str, timeout: float
) -> str | None:
    """A Ready pod (not being deleted) of the ReplicaSet with this pod-template-hash, as
    soon as there is one; None after `timeout` seconds."""
    labels = {**match_labels, "pod-template-hash": template_hash}

    async def first() -> str:
        pods = (
            await informers.of(kube)
            .informer("Pod")
            .subscribe(lambda pod: informers.carries(pod, labels))
        )
        try:
            async for kind, pod in pods:
                if kind not in ("DELETED", "SYNCED") and is_ready(pod):
                    return str(pod["metadata"]["name"])
        finally:
            pods.close()
        raise KubeError("the pod watch ended")  # a subscription never ends on its own

    try:
        return await within(first(), timeout)
    except TimeoutError:
        return None


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
        watch = RolloutWatch(
            kube,
            deployment["metadata"]["name"],
            deployment["spec"]["selector"].get("matchLabels") or {},
        )
    state = _Follow(deployment)
    try:
        return await within(_follow(kube, state, emit, t0, watch, on_started, edited_at), timeout)
    except TimeoutError:
        message = f"the new pod was not Ready after {timeout:g}s"
        if state.last_problem:  # what it was waiting on: the explanation starts there
            message += f"; last: {state.last_problem}"
        failure = events.RolloutFailed(state.last_pod, "Timeout", message)
        emit(failure)
        return RolloutResult(False, failure=failure)
    finally:
        if own:
            await watch.close()


HELD_EVENTS = 200  # events not (yet) about the new ReplicaSet or its pods
# A ReplicaSet that cannot create its pod (FailedCreate: a quota, an admission webhook)
# retries, each time with a new generated pod name in the message: one waiting line per
# reason and object at most this often, and only when its text (names aside) is new.
WAITING_REPEAT_S = 10.0
_GENERATED_POD = re.compile(r'(pods? \\?"[a-z0-9.-]+)-[a-z0-9]{5}(\\?")')


def waiting_key(detail: str) -> str:
    """A waiting message without the generated pod names it may carry."""
    return _GENERATED_POD.sub(r"\1-*\2", detail)


@dataclass
class _Follow:
    """What has been seen and reported of one rollout, so each step is told once."""

    deployment: dict[str, Any]
    rs: dict[str, Any] | None = None  # the new ReplicaSet, once seen
    reported: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    held_pods: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    held_events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=HELD_EVENTS))
    last_pod: str = ""  # the newest pod of the new ReplicaSet seen
    last_problem: str = ""  # the latest waiting reason or warning, as shown
    liveness: dict[str, str] = field(default_factory=dict)  # pod → its last liveness failure
    waited: dict[str, float] = field(default_factory=dict)  # pod/reason → when last shown

    @property
    def rs_name(self) -> str:
        return self.rs["metadata"]["name"] if self.rs else ""

    def ours(self, pod: dict[str, Any]) -> bool:
        assert self.rs is not None
        labels = pod["metadata"].get("labels") or {}
        wanted = self.rs["metadata"]["labels"].get("pod-template-hash")
        return bool(labels.get("pod-template-hash") == wanted)


async def _follow(
    kube: Kube,
    state: _Follow,
    emit: Emit,
    t0: float,
    watch: RolloutWatch,
    on_started: Callable[[str], None] | None,
    edited_at: float | None = None,
) -> RolloutResult:
    deployment = state.deployment
    started_wall = time.time() - (time.monotonic() - t0)

    def ms() -> float:
        return (time.monotonic() - t0) * 1000

    def step(pod: str, name: str, detail: str = "") -> None:
        key = f"{pod}/{name}/{waiting_key(detail) if name == 'waiting' else ''}"
        if name == "waiting":
            state.last_problem = detail
            reason = f"{pod}/{detail.split(':', 1)[0]}"
            if time.monotonic() - state.waited.get(reason, -WAITING_REPEAT_S) < WAITING_REPEAT_S:
                return  # a controller retrying: its reason once in a while, not a flood
            state.waited[reason] = time.monotonic()
        if key not in state.reported:
            state.reported.add(key)
            emit(events.PodProgress(pod, name, detail, ms()))

    async def fail(pod: str, reason: str, message: str, crashed: bool = False) -> RolloutResult:
        logs: tuple[str, ...] = ()
        if crashed:
            logs = await _last_logs(kube, pod)
        failure = events.RolloutFailed(pod, reason, message, logs)
        emit(failure)
        return RolloutResult(False, pod, state.rs_name, ms(), failure)

    async def on_pod(kind: str, obj: dict[str, Any]) -> RolloutResult | None:
        if kind == "DELETED" or not state.ours(obj):
            return None
        name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
        if obj["metadata"]["uid"] not in state.uids:
            state.uids.add(obj["metadata"]["uid"])
            state.last_pod = name
            created = _created_at(obj)
            if created is not None and created < started_wall - 1 and is_ready(obj):
                # The template equals an older ReplicaSet's: its pod already runs it.
                step(name, "serving", "already running this template")
            else:
                step(name, "created")
            if result := await replay_events():  # what the cluster said of it meanwhile
                return result
        if conditions.get("PodScheduled") == "True":
            step(name, "scheduled", (obj.get("spec") or {}).get("nodeName", ""))
        # A pod being deleted (by someone, or by the controller) stops with a terminated
        # container too: that is not a crash, and its ReplicaSet makes a new one.
        deleting = bool(obj["metadata"].get("deletionTimestamp"))
        terminated = termination(obj) if not is_ready(obj) and not deleting else None
        if terminated is not None:
            reason, message = crash_message(terminated)
            if name in state.liveness and terminated.get("exitCode") in KILLED_EXIT_CODES:
                reason, message = liveness_kill(state.liveness[name])
            return await fail(name, reason, message, crashed=True)
        for cs in status.get("containerStatuses") or []:
            container_state = cs.get("state") or {}
            if "running" in container_state:
                if f"{name}/started/" not in state.reported and on_started:
                    on_started(name)
                step(name, "started")
            waiting = container_state.get("waiting") or {}
            if waiting.get("reason") in FAILING_WAIT_REASONS:
                return await fail(name, waiting["reason"], waiting.get("message", ""))
        if conditions.get("Ready") == "True" and not obj["metadata"].get("deletionTimestamp"):
            elapsed = ms()
            since_edit = (time.time() - edited_at) * 1000 if edited_at else None
            emit(events.PodReady(name, state.rs_name, elapsed, since_edit))
            return RolloutResult(True, name, state.rs_name, elapsed)
        return None

    async def on_event(obj: dict[str, Any]) -> RolloutResult | None:
        involved = obj.get("involvedObject") or {}
        if state.rs is None or involved.get("uid") not in state.uids | {
            state.rs["metadata"]["uid"]
        }:
            state.held_events.append(obj)  # its pod may not have been seen yet
            return None
        reason, message = obj.get("reason", ""), obj.get("message", "")
        pod = involved.get("name", "")
        if reason == "Pulled":
            step(pod, "pulled", message)
        elif reason in TRANSIENT_EVENT_REASONS:
            step(pod, "waiting", f"{reason}: {message}")
        elif obj.get("type") == "Warning" and reason not in ("BackOff", "Failed"):
            if reason == "Unhealthy" and message.startswith("Liveness probe failed"):
                state.liveness[pod] = message
            state.last_problem = f"{reason}: {message}"
            emit(events.PodProgress(pod, "warning", state.last_problem, ms()))
        return None

    async def replay_events() -> RolloutResult | None:
        for _ in range(len(state.held_events)):
            if result := await on_event(state.held_events.popleft()):
                return result
        return None

    def on_deployment(obj: dict[str, Any]) -> RolloutResult | None:
        if obj["metadata"].get("uid") != deployment["metadata"].get("uid"):
            return None
        # Newer than the change this rollout follows: the watch, opened before that change,
        # first shows the Deployment as it was.
        newer = obj["metadata"].get("generation", 0) > deployment["metadata"].get("generation", 0)
        if newer and without_hash(obj["spec"]["template"]) != without_hash(
            deployment["spec"]["template"]
        ):
            # `kubectl set image`, `rollout restart`, another pdwatch: the pods this rollout
            # waits for are replaced by that change's; following them would blame readiness
            # for a pod that is gone.
            who = plan.changed_by(obj, FIELD_MANAGER)
            name = obj["metadata"]["name"]
            emit(
                events.Warning(
                    f"deployment {name} was changed by {who} during the rollout: that "
                    "change's rollout replaces this one"
                )
            )
            return RolloutResult(False, "", state.rs_name, ms(), superseded_by=who)
        status = plan.rollout_status(obj)
        if status.state == plan.DEADLINE:
            failure = events.RolloutFailed(
                state.rs_name, "ProgressDeadlineExceeded", status.message
            )
            emit(failure)
            return RolloutResult(False, "", state.rs_name, ms(), failure)
        if status.state == plan.PAUSED:
            meta = obj["metadata"]
            failure = paused_failure(meta["name"], meta.get("namespace", ""))
            emit(failure)
            return RolloutResult(False, "", state.rs_name, ms(), failure)
        return None

    async for tag, kind, obj in watch:
        result: RolloutResult | None = None
        if tag == "deployment":
            if kind != "DELETED":
                result = on_deployment(obj)
            elif obj["metadata"].get("uid") == deployment["metadata"].get("uid"):
                raise Vanished(
                    f"deployment {obj['metadata'].get('name')} was deleted during its rollout"
                )
        elif tag == "rs":
            if state.rs is None and kind != "DELETED" and is_new_replica_set(obj, deployment):
                state.rs = obj
                result = await replay_events()
                for held_kind, pod in list(state.held_pods.values()):
                    result = result or await on_pod(held_kind, pod)
                state.held_pods.clear()
        elif tag == "pod":
            if state.rs is None:
                state.held_pods[obj["metadata"]["name"]] = (kind, obj)
            else:
                result = await on_pod(kind, obj)
        else:
            result = await on_event(obj)
        if result is not None:
            return result
    raise KubeError("the rollout watch ended")


def _created_at(obj: dict[str, Any]) -> float | None:
    text = obj["metadata"].get("creationTimestamp")
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _last_logs(kube: Kube, pod: str) -> tuple[str, ...]:
    """The crashed container's last lines: the previous run's, else the current one's. A
    container the kubelet is restarting at that moment may have neither to give yet: asked
    again a few times, briefly."""
    for attempt in range(3):
        for previous in (True, False):
            try:
                text = await kube.pod_log(pod, previous=previous, tail_lines=LAST_LOG_LINES)
            except KubeError:
                continue
            if text.strip():
                return tuple(text.rstrip("\n").split("\n"))
        if attempt < 2:
            await asyncio.sleep(0.3)
    return ()


def paused_failure(name: str, namespace: str) -> events.RolloutFailed:
    """A paused Deployment rolls nothing out: what to run to resume it."""
    return events.RolloutFailed(
        "",
        "Paused",
        f"deployment {name} is paused (kubectl rollout pause); nothing rolls out until it "
        f"is resumed: kubectl rollout resume deployment/{name} -n {namespace}",
    )
