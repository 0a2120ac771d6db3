"""One rollout's progress as data: what has been seen of it, and what each thing the
watches show means for it (Tilt's engine and store are the model).

kube/rollout.py does the I/O: it opens the watches, reads the clock and a crashed
container's last log lines, and emits. Each thing seen goes through `observe`, a pure
function of the progress so far that returns the progress after it and what follows from
it (events to show, the engine started, the rollout over); `timed_out` says what giving
up means. Tested by tables in milliseconds (tests/test_progress.py).

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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from devloop import events
from devloop.kube import plan
from devloop.kube.client import FIELD_MANAGER

FAILING_WAIT_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)
TRANSIENT_EVENT_REASONS = frozenset({"FailedCreate", "FailedScheduling", "FailedMount"})
# A container stopped by the kubelet: SIGTERM (the engine has no handler), or SIGKILL
# after the grace period.
KILLED_EXIT_CODES = (143, 137)
HELD_EVENTS = 200  # events not (yet) about the new ReplicaSet or its pods
# A ReplicaSet that cannot create its pod (FailedCreate: a quota, an admission webhook)
# retries, each time with a new generated pod name in the message: one waiting line per
# reason and object at most this often, and only when its text (names aside) is new.
WAITING_REPEAT_S = 10.0
_GENERATED_POD = re.compile(r'(pods? \\?"[a-z0-9.-]+)-[a-z0-9]{5}(\\?")')


@dataclass
class RolloutResult:
    ok: bool
    pod: str = ""
    replica_set: str = ""
    ms: float = 0
    failure: events.RolloutFailed | None = None
    superseded_by: str = ""  # who changed the pod template while it rolled out


# --- facts about objects ------------------------------------------------------------------------


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels.pop("pod-template-hash", None)
    meta = {**(template.get("metadata") or {}), "labels": labels}
    return {**template, "metadata": meta}


def is_new_replica_set(rs: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """Owned by the Deployment, with its current template (ignoring `pod-template-hash`):
    the ReplicaSet kubectl calls the new one."""
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


def liveness_kill(last_failure: str) -> tuple[str, str]:
    """(reason, message) of a container the kubelet stopped because its liveness probe
    kept failing (its event: "Container … failed liveness probe, will be restarted"): that,
    not the exit code it was stopped with, is what happened."""
    return "Unhealthy", f"the kubelet restarted the engine: {last_failure}"


def waiting_key(detail: str) -> str:
    """A waiting message without the generated pod names it may carry."""
    return _GENERATED_POD.sub(r"\1-*\2", detail)


def created_at(obj: dict[str, Any]) -> float | None:
    text = obj["metadata"].get("creationTimestamp")
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text)).timestamp()  # "Z" is read since 3.11
    except ValueError:
        return None


def paused_failure(name: str, namespace: str) -> events.RolloutFailed:
    """A paused Deployment rolls nothing out: what to run to resume it."""
    return events.RolloutFailed(
        "",
        "Paused",
        f"deployment {name} is paused (kubectl rollout pause); nothing rolls out until it "
        f"is resumed: kubectl rollout resume deployment/{name} -n {namespace}",
    )


# --- the progress, and what is seen -------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """What has been seen and reported of one rollout, so each step is told once."""

    deployment: dict[str, Any]  # as the change that started the rollout left it
    t0: float  # the monotonic clock when the rollout began
    started_wall: float  # the same moment on the wall clock
    edited_at: float | None = None  # the wall clock of the save that caused it, if known
    rs: dict[str, Any] | None = None  # the new ReplicaSet, once seen
    reported: frozenset[str] = frozenset()
    uids: frozenset[str] = frozenset()  # of the new ReplicaSet's pods seen
    # seen before their ReplicaSet: name → (kind, pod)
    held_pods: Mapping[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    held_events: tuple[dict[str, Any], ...] = ()  # not (yet) about the RS or its pods
    last_pod: str = ""  # the newest pod of the new ReplicaSet seen
    last_problem: str = ""  # the latest waiting reason or warning, as shown
    liveness: Mapping[str, str] = field(default_factory=dict)  # pod → its last liveness failure
    # pod/reason → when last shown (monotonic)
    waited: Mapping[str, float] = field(default_factory=dict)

    @property
    def rs_name(self) -> str:
        return self.rs["metadata"]["name"] if self.rs else ""

    def ms(self, now: Clock) -> float:
        return (now.mono - self.t0) * 1000


@dataclass(frozen=True)
class Clock:
    mono: float  # time.monotonic()
    wall: float  # time.time()


@dataclass(frozen=True)
class Seen:
    """One thing the rollout's watches showed: `tag` is deployment, rs, pod or event."""

    tag: str
    kind: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]


# --- what follows from it, besides events to show -----------------------------------------------


@dataclass(frozen=True)
class Started:
    """The new pod's engine container runs (its logs can be tailed)."""

    pod: str


@dataclass(frozen=True)
class Crashed:
    """The new pod's engine exited: the rollout failed, with its last log lines (read by
    the caller) in the failure."""

    pod: str
    reason: str
    message: str


@dataclass(frozen=True)
class Done:
    result: RolloutResult


@dataclass(frozen=True)
class Gone:
    """The Deployment was deleted during its rollout."""

    message: str


Output = events.Event | Started | Crashed | Done | Gone
ENDINGS = (Crashed, Done, Gone)


def timed_out(progress: Progress, timeout: float) -> events.RolloutFailed:
    """Giving up after `timeout` seconds: the explanation starts with what it waited on."""
    message = f"the new pod was not Ready after {timeout:g}s"
    if progress.last_problem:
        message += f"; last: {progress.last_problem}"
    return events.RolloutFailed(progress.last_pod, "Timeout", message)


def observe(progress: Progress, seen: Seen, now: Clock) -> tuple[Progress, list[Output]]:
    """The progress after `seen`, and what follows from it, in order. The rollout is over
    when the last output is a Crashed, Done or Gone."""
    out: list[Output] = []
    p = progress
    if seen.tag == "deployment":
        if seen.kind != "DELETED":
            p = _deployment(p, seen.obj, now, out)
        elif seen.obj["metadata"].get("uid") == p.deployment["metadata"].get("uid"):
            name = seen.obj["metadata"].get("name")
            out.append(Gone(f"deployment {name} was deleted during its rollout"))
    elif seen.tag == "rs":
        if p.rs is None and seen.kind != "DELETED" and is_new_replica_set(seen.obj, p.deployment):
            p = _replay_events(replace(p, rs=seen.obj), now, out)
            held, p = p.held_pods, replace(p, held_pods={})
            for kind, pod in held.values():
                if over(out):
                    break
                p = _pod(p, kind, pod, now, out)
    elif seen.tag == "pod":
        if p.rs is None:
            name = seen.obj["metadata"]["name"]
            p = replace(p, held_pods={**p.held_pods, name: (seen.kind, seen.obj)})
        else:
            p = _pod(p, seen.kind, seen.obj, now, out)
    else:
        p = _event(p, seen.obj, now, out)
    return p, out


def over(out: list[Output]) -> bool:
    return bool(out) and isinstance(out[-1], ENDINGS)


def _step(p: Progress, pod: str, name: str, detail: str, now: Clock, out: list[Output]) -> Progress:
    """A step of a pod, told once (a waiting reason: once in a while, when new)."""
    key = f"{pod}/{name}/{waiting_key(detail) if name == 'waiting' else ''}"
    if name == "waiting":
        p = replace(p, last_problem=detail)
        reason = f"{pod}/{detail.split(':', 1)[0]}"
        if now.mono - p.waited.get(reason, -WAITING_REPEAT_S) < WAITING_REPEAT_S:
            return p  # a controller retrying: its reason once in a while, not a flood
        p = replace(p, waited={**p.waited, reason: now.mono})
    if key in p.reported:
        return p
    out.append(events.PodProgress(pod, name, detail, p.ms(now)))
    return replace(p, reported=p.reported | {key})


def _ours(p: Progress, pod: dict[str, Any]) -> bool:
    assert p.rs is not None
    labels = pod["metadata"].get("labels") or {}
    wanted = p.rs["metadata"]["labels"].get("pod-template-hash")
    return bool(labels.get("pod-template-hash") == wanted)


def _pod(p: Progress, kind: str, obj: dict[str, Any], now: Clock, out: list[Output]) -> Progress:
    if kind == "DELETED" or not _ours(p, obj):
        return p
    name = obj["metadata"]["name"]
    status = obj.get("status") or {}
    conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
    if obj["metadata"]["uid"] not in p.uids:
        p = replace(p, uids=p.uids | {obj["metadata"]["uid"]}, last_pod=name)
        created = created_at(obj)
        if created is not None and created < p.started_wall - 1 and is_ready(obj):
            # The template equals an older ReplicaSet's: its pod already runs it.
            p = _step(p, name, "serving", "already running this template", now, out)
        else:
            p = _step(p, name, "created", "", now, out)
        p = _replay_events(p, now, out)  # what the cluster said of it meanwhile
    if conditions.get("PodScheduled") == "True":
        p = _step(p, name, "scheduled", (obj.get("spec") or {}).get("nodeName", ""), now, out)
    # A pod being deleted (by someone, or by the controller) stops with a terminated
    # container too: that is not a crash, and its ReplicaSet makes a new one.
    ready, deleting = is_ready(obj), bool(obj["metadata"].get("deletionTimestamp"))
    terminated = None if ready or deleting else termination(obj)
    if terminated is not None:
        reason, message = crash_message(terminated)
        if name in p.liveness and terminated.get("exitCode") in KILLED_EXIT_CODES:
            reason, message = liveness_kill(p.liveness[name])
        out.append(Crashed(name, reason, message))
        return p
    for cs in status.get("containerStatuses") or []:
        container_state = cs.get("state") or {}
        if "running" in container_state:
            if f"{name}/started/" not in p.reported:
                out.append(Started(name))
            p = _step(p, name, "started", "", now, out)
        waiting = container_state.get("waiting") or {}
        if waiting.get("reason") in FAILING_WAIT_REASONS:
            failure = events.RolloutFailed(name, waiting["reason"], waiting.get("message", ""))
            out.extend((failure, Done(RolloutResult(False, name, p.rs_name, p.ms(now), failure))))
            return p
    if ready:
        elapsed = p.ms(now)
        since_edit = (now.wall - p.edited_at) * 1000 if p.edited_at else None
        out.append(events.PodReady(name, p.rs_name, elapsed, since_edit))
        out.append(Done(RolloutResult(True, name, p.rs_name, elapsed)))
    return p


def _event(p: Progress, obj: dict[str, Any], now: Clock, out: list[Output]) -> Progress:
    involved = obj.get("involvedObject") or {}
    if p.rs is None or involved.get("uid") not in p.uids | {p.rs["metadata"]["uid"]}:
        # its pod may not have been seen yet
        return replace(p, held_events=(*p.held_events, obj)[-HELD_EVENTS:])
    reason, message = obj.get("reason", ""), obj.get("message", "")
    pod = involved.get("name", "")
    if reason == "Pulled":
        return _step(p, pod, "pulled", message, now, out)
    if reason in TRANSIENT_EVENT_REASONS:
        return _step(p, pod, "waiting", f"{reason}: {message}", now, out)
    if obj.get("type") == "Warning" and reason not in ("BackOff", "Failed"):
        if reason == "Unhealthy" and message.startswith("Liveness probe failed"):
            p = replace(p, liveness={**p.liveness, pod: message})
        p = replace(p, last_problem=f"{reason}: {message}")
        out.append(events.PodProgress(pod, "warning", p.last_problem, p.ms(now)))
    return p


def _replay_events(p: Progress, now: Clock, out: list[Output]) -> Progress:
    """The events held so far, seen again (those still about nothing known are held)."""
    held, p = p.held_events, replace(p, held_events=())
    for obj in held:
        p = _event(p, obj, now, out)
    return p


def _deployment(p: Progress, obj: dict[str, Any], now: Clock, out: list[Output]) -> Progress:
    deployment = p.deployment
    if obj["metadata"].get("uid") != deployment["metadata"].get("uid"):
        return p
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
        out.append(
            events.Warning(
                f"deployment {name} was changed by {who} during the rollout: that "
                "change's rollout replaces this one"
            )
        )
        out.append(Done(RolloutResult(False, "", p.rs_name, p.ms(now), superseded_by=who)))
        return p
    status = plan.rollout_status(obj)
    failure = None
    if status.state == plan.DEADLINE:
        failure = events.RolloutFailed(p.rs_name, "ProgressDeadlineExceeded", status.message)
    elif status.state == plan.PAUSED:
        meta = obj["metadata"]
        failure = paused_failure(meta["name"], meta.get("namespace", ""))
    if failure is not None:
        out.extend((failure, Done(RolloutResult(False, "", p.rs_name, p.ms(now), failure))))
    return p
