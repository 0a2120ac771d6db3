"""One workflow's loop as data: its state, the actions that change it, and the decisions
taken from it (Tilt's engine and store are the model).

The loop (devloop.loop) does the I/O: it watches, renders, deploys and follows, and
reports what happened as actions; `reduce` is the only thing that changes the state, and
every choice the loop makes (whether a save starts a cycle, what a cycle deploys, what
its outcome is, whether something seen in the cluster asks for a cycle) is a pure
function here, tested by tables in milliseconds (tests/test_workflowstate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devloop.kube import plan

if TYPE_CHECKING:
    from devloop.kube.deploy import CycleResult
    from devloop.render import Bundle

FIELD_MANAGER = "pdwatch"
# Reasons that start a cycle even while paused: the session's first deploy, and `r`.
UNPAUSED_REASONS = frozenset({"start", "redeploy"})
ROLLOUT_OVER = frozenset({"ready", "failed"})  # the last steps a rollout takes


@dataclass(frozen=True)
class Pending:
    """Work asked for and not yet taken by a cycle: what it is for, coalesced."""

    paths: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = ()
    force: bool = False  # restart the pod even when nothing changed
    follow_only: bool = True  # only changes seen in the cluster: show them, apply nothing
    rollback: int | None = None  # a revision to put back live instead of the local files
    saved_at: float | None = None  # wall clock of the last save, as the watch saw it

    def __bool__(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class WorkflowState:
    """Everything the loop of one workflow knows between two events: the files seen
    changed and not yet taken by a cycle (pending), what is deployed, the cycle in flight
    and its rollout's last step, the pod being served. The session holds one per
    workflow (devloop.sessionstate)."""

    pending: Pending = field(default_factory=Pending)
    paused: bool = False
    cycle: int = 0  # the number of the last cycle started
    cycling: bool = False  # a cycle runs: the idle monitor leaves what it changes alone
    checked: bool = False  # preflight passed once this session
    deployed: Bundle | None = None  # what runs, as pdwatch last deployed it
    previous_deployed: Bundle | None = None  # what ran before it (the TUI's diff)
    names_sent: tuple[str, ...] = ()  # workflow names this session deployed (or tried)
    serving: str = ""  # the pod that serves the workflow: the URL's and `t`'s
    failed_hash: str | None = None  # the template whose rollout failed, while it stands
    known: dict[str, Any] | None = None  # the Deployment as the last cycle left it
    status: str = ""  # "watching", "deploying", "paused", "error", …
    detail: str = ""
    rolling: RolloutStepped | None = None  # the cycle in flight's rollout: its last step


# --- actions: what happened, as the loop reports it --------------------------------------------


@dataclass(frozen=True)
class Requested:
    """Work asked for: a save (paths), `r`, a start, a change seen in the cluster."""

    paths: frozenset[str]
    reason: str
    force: bool = False
    follow_only: bool = False
    saved_at: float | None = None  # when the watch saw the save
    now: float = 0.0  # the wall clock when it was asked for


@dataclass(frozen=True)
class RollbackRequested:
    number: int


@dataclass(frozen=True)
class Paused:
    pass


@dataclass(frozen=True)
class Resumed:
    pass


@dataclass(frozen=True)
class Checked:
    """Preflight passed: it is not run again this session."""


@dataclass(frozen=True)
class CycleBegan:
    """A cycle took `work`; `left` stays pending (saves that wait behind a rollback)."""

    work: Pending
    left: Pending


@dataclass(frozen=True)
class RetryJoined:
    """What was asked for during a retry's wait joined the retried cycle."""


@dataclass(frozen=True)
class Named:
    """A render gave the workflow's name (it may have been renamed)."""

    name: str


@dataclass(frozen=True)
class Serving:
    """A pod serves the workflow from now on."""

    pod: str


@dataclass(frozen=True)
class RolloutStepped:
    """The cycle's rollout took a step: its new pod was created, scheduled, started, …"""

    pod: str
    step: str
    detail: str = ""


@dataclass(frozen=True)
class DeploymentLost:
    """The Deployment a follow-only cycle looked for is gone."""


@dataclass(frozen=True)
class CycleEnded:
    """A cycle's deploy came to an end: what it left in the cluster and how it went."""

    outcome: str  # outcome_of
    deployment: dict[str, Any] | None
    bundle: Bundle | None
    pod: str = ""  # the pod serving after it, when it says


@dataclass(frozen=True)
class Idle:
    """No cycle runs any more (whatever the last one did)."""


@dataclass(frozen=True)
class Status:
    status: str
    detail: str = ""


Action = (
    Requested
    | RollbackRequested
    | Paused
    | Resumed
    | Checked
    | CycleBegan
    | RetryJoined
    | Named
    | Serving
    | RolloutStepped
    | DeploymentLost
    | CycleEnded
    | Idle
    | Status
)


def requested(pending: Pending, action: Requested) -> Pending:
    """`pending` with one more request coalesced into it."""
    saved_at = pending.saved_at
    if action.paths:  # when the watch saw the save, else now (a file polled, not watched)
        saved = min(action.saved_at or action.now, action.now)
        saved_at = max(saved_at or saved, saved)
    return replace(
        pending,
        paths=pending.paths | action.paths,
        reasons=(*pending.reasons, action.reason),
        force=pending.force or action.force,
        follow_only=pending.follow_only and action.follow_only,
        saved_at=saved_at,
    )


def reduce(state: WorkflowState, action: Action) -> WorkflowState:
    """The state after `action`: the only way the state changes."""
    match action:
        case Requested():
            return replace(state, pending=requested(state.pending, action))
        case RollbackRequested(number=number):
            pending = replace(state.pending, rollback=number)
            asked = Requested(frozenset(), "rollback", force=True)
            return replace(state, pending=requested(pending, asked))
        case Paused():
            return replace(state, paused=True)
        case Resumed():
            return replace(state, paused=False)
        case Checked():
            return replace(state, checked=True)
        case CycleBegan(left=left):
            return replace(state, pending=left, cycle=state.cycle + 1, cycling=True, rolling=None)
        case RetryJoined():
            return replace(state, pending=Pending())
        case Named(name=name):
            if name in state.names_sent:
                return state
            return replace(state, names_sent=(*state.names_sent, name))
        case Serving(pod=pod):
            return replace(state, serving=pod)
        case RolloutStepped():
            return replace(state, rolling=action) if state.cycling else state
        case DeploymentLost():
            return replace(state, known=None)
        case CycleEnded():
            return ended(state, action)
        case Idle():
            return replace(state, cycling=False, rolling=None)
        case Status(status=status, detail=detail):
            return replace(state, status=status, detail=detail)


def ended(state: WorkflowState, action: CycleEnded) -> WorkflowState:
    """What a cycle's end changes: what runs, what serves, which template failed."""
    outcome = action.outcome
    serving, failed_hash = state.serving, state.failed_hash
    if outcome == "ready":
        serving, failed_hash = action.pod, None
    elif outcome == "failed":
        failed_hash = plan.template_hash(action.deployment)
    elif outcome in ("applied", "unchanged") and action.pod:
        serving = action.pod
    deployed, previous = state.deployed, state.previous_deployed
    if action.bundle is not None and outcome not in ("failed", "superseded"):
        if outcome != "unchanged":  # a deploy happened: the one before it is the previous
            previous = deployed
        deployed = action.bundle
    return replace(
        state,
        rolling=None,  # the rollout is over, whatever it did
        known=action.deployment,
        serving=serving,
        failed_hash=failed_hash,
        deployed=deployed,
        previous_deployed=previous,
    )


# --- decisions ----------------------------------------------------------------------------------


def wakes(state: WorkflowState, reason: str) -> bool:
    """Whether a request for `reason` wakes the worker now (paused: only a start or `r`)."""
    return not state.paused or reason in UNPAUSED_REASONS


def next_cycle(state: WorkflowState) -> CycleBegan | None:
    """What the next cycle takes, or None when there is nothing to do now. A rollback goes
    first and alone; the saves that came with it stay pending, for the cycle after it."""
    work = state.pending
    if not work:
        return None
    if state.paused and not work.force and "start" not in work.reasons:
        return None
    others = tuple(r for r in work.reasons if r != "rollback")
    if work.rollback is not None and others:
        left = Pending(work.paths, others, False, work.follow_only)
        return CycleBegan(Pending(frozenset(), ("rollback",), True, False, work.rollback), left)
    return CycleBegan(work, Pending())


def more_work(state: WorkflowState) -> bool:
    """Whether the worker goes on at once after a cycle (or a split rollback)."""
    return bool(state.pending) and not state.paused


def cycle_reason(work: Pending) -> str:
    """The one word a cycle is shown with."""
    if work.rollback is not None:
        return f"rollback r{work.rollback}"
    if "redeploy" in work.reasons:
        return "redeploy"
    return work.reasons[0] if len(set(work.reasons)) == 1 else "change"


def joins_retry(work: Pending, pending: Pending) -> bool:
    """Whether what was asked for during a retry's wait joins the retried cycle: the
    recovery then deploys the latest once. Not into a rollback, and not a rollback asked
    for meanwhile: those go after it."""
    return bool(pending) and work.rollback is None and pending.rollback is None


def outcome_of(cycle: CycleResult) -> str:
    """ "ready", "failed", "superseded" (someone changed the template while it rolled out),
    "applied" (no rollout to follow) or "unchanged"."""
    rollout = cycle.rollout
    if rollout is None:
        return "applied" if cycle.applied else "unchanged"
    if rollout.superseded_by:
        return "superseded"
    return "ready" if rollout.ok else "failed"


def records(outcome: str) -> bool:
    """Whether a cycle's deploy goes into the history: it serves (or already did)."""
    return outcome in ("ready", "unchanged")


def status_after(outcome: str) -> tuple[str, str]:
    """The loop's state once a cycle has finished with `outcome`."""
    if outcome == "failed":
        return "error", "the new pod failed; the previous one keeps running"
    return "watching", ""


def shows_status(state: WorkflowState, status: str, detail: str) -> bool:
    """Whether a state is said: a new one, or the same one with a new detail."""
    return status != state.status or bool(detail)


def renamed_from(state: WorkflowState, name: str) -> str | None:
    """The name the workflow deployed under before, when a render gives a new one: that
    deploy stays in the cluster, orphaned."""
    if name in state.names_sent or not state.names_sent:
        return None
    return state.names_sent[-1]


def serves_previous(state: WorkflowState, live_hash: str | None) -> bool:
    """After a failed rollout the previous ReplicaSet serves: a follow-only cycle then
    finds that ReplicaSet's pod, not the failed rollout again, while the failed template
    is still the live one."""
    return bool(state.serving) and state.failed_hash is not None and live_hash == state.failed_hash


def quit_note(state: WorkflowState) -> str | None:
    """What quitting leaves behind, when a rollout is in flight: the cluster goes on with
    it, and nobody follows it any more."""
    step = state.rolling
    if not state.cycling or step is None or step.step in ROLLOUT_OVER:
        return None
    last = f"{step.step}: {step.detail}" if step.detail else step.step
    return (
        f"quit during cycle {state.cycle}'s rollout (pod {step.pod}, last: {last}); "
        "the cluster goes on with it, unfollowed"
    )


@dataclass(frozen=True)
class ClusterChange:
    """Something seen in the cluster while idle that calls for a cycle: `why` for the
    person, `redeploy` for the loop (the Deployment is gone: deploy it again; otherwise
    follow what the cluster does now)."""

    why: str
    redeploy: bool = False


def cluster_change(
    source: str, event: str, obj: dict[str, Any], known: dict[str, Any], serving: str
) -> ClusterChange | None:
    """What something seen in the cluster while idle calls for, or None. `known` is the
    Deployment as the last cycle left it, `serving` the pod that served it. `event`
    "SYNCED" ends a (re)list, with the names it held."""
    name = known["metadata"]["name"]
    deleted = ClusterChange(f"deployment {name} was deleted", redeploy=True)
    if source == "Deployment":
        if event == "SYNCED":
            return None if name in obj["names"] else deleted
        if event == "DELETED" or obj["metadata"].get("uid") != known["metadata"].get("uid"):
            return deleted
        if obj["metadata"].get("generation", 0) > known["metadata"].get("generation", 0):
            other = plan.deployed_from(obj)
            if other and other != plan.deployed_from(known):
                return ClusterChange(
                    f"deployment {name} was deployed from {other}: that directory's files "
                    "run now, not these (a save here deploys them again)"
                )
            by = plan.changed_by(obj, FIELD_MANAGER)
            return ClusterChange(f"deployment {name} was changed by {by}")
        return None
    if not serving:
        return None
    if event == "SYNCED":
        return None if serving in obj["names"] else ClusterChange(f"pod {serving} is gone")
    if obj["metadata"].get("name") == serving and (
        event == "DELETED" or obj["metadata"].get("deletionTimestamp")
    ):
        return ClusterChange(f"pod {serving} was deleted")
    return None


def seen_while_idle(
    state: WorkflowState, source: str, event: str, obj: dict[str, Any]
) -> ClusterChange | None:
    """What the idle monitor asks for: a cluster change, unless a cycle runs (its own
    changes), nothing is deployed yet, or the same change already waits."""
    if state.cycling or state.known is None:
        return None
    change = cluster_change(source, event, obj, state.known, state.serving)
    if change is None or change.why in state.pending.reasons:
        return None
    return change
