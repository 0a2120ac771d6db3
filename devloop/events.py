"""What happens in pdwatch, as typed events: the contract between the work (deploy cycle,
loop) and the front ends (plain output, TUI), which only render them."""

from __future__ import annotations

from dataclasses import dataclass, field

from devloop.problems import Problem


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class CycleStarted(Event):
    cycle: int
    changed: tuple[str, ...] = ()  # relative paths; empty for the first deploy or "redeploy"
    reason: str = "change"  # "start", "change", "redeploy", "recovered"


@dataclass(frozen=True)
class Rendered(Event):
    content_hash: str
    code_bytes: int
    files_changed: tuple[str, ...] = ()  # against the running deploy
    ms: float = 0
    warnings: tuple[Problem, ...] = ()  # and notes: the deploy goes on
    format: str = ""  # the workflow format and why (wfformat.FormatChoice)


@dataclass(frozen=True)
class RenderFailed(Event):
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Recorded(Event):
    """A deploy that reached Ready went into the deploy history as a new revision."""

    revision: int


@dataclass(frozen=True)
class Unchanged(Event):
    """The cluster already runs exactly this: nothing applied, nothing restarted."""

    content_hash: str
    pod: str = ""  # the pod serving it, when there is one


@dataclass(frozen=True)
class Applied(Event):
    objects: tuple[str, ...]  # "ConfigMap/x-code", …
    ms: float
    pruned: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestartTriggered(Event):
    deployment: str
    # "template" (the apply changed the pod template), "restartedAt" (a restart asked for),
    # or "in-progress" (a rollout already under way, e.g. of a cycle cut short, followed)
    via: str
    stamp: str = ""


@dataclass(frozen=True)
class PodProgress(Event):
    pod: str
    step: str  # "created", "scheduled", "pulled", "started", "waiting", "warning"
    detail: str = ""
    ms: float = 0  # since the cycle's restart


@dataclass(frozen=True)
class PodReady(Event):
    pod: str
    replica_set: str
    ms: float  # restart → Ready
    edit_to_ready_ms: float | None = None


@dataclass(frozen=True)
class RolloutFailed(Event):
    pod: str
    reason: str  # the cluster's own: CrashLoopBackOff, ErrImagePull, FailedMount, …
    message: str
    last_logs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Explained(Event):
    """What the failure just reported means and what to do (explain.CATALOGUE)."""

    what: str
    fix: str


@dataclass(frozen=True)
class LogLine(Event):
    pod: str
    text: str


@dataclass(frozen=True)
class Warning(Event):
    message: str


@dataclass(frozen=True)
class Error(Event):
    message: str
    details: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Retrying(Event):
    what: str
    attempt: int
    delay_s: float
    error: str


@dataclass(frozen=True)
class PreflightReport(Event):
    lines: tuple[str, ...]
    ok: bool


@dataclass(frozen=True)
class CycleFinished(Event):
    cycle: int
    outcome: str  # "ready", "unchanged", "invalid", "failed", "applied", "superseded"
    edit_to_ready_ms: float | None = None


@dataclass(frozen=True)
class LoopState(Event):
    """What the loop is doing now: watching, deploying, paused, error, retrying, waiting."""

    state: str
    detail: str = ""


@dataclass(frozen=True)
class RunResult(Event):
    status: int
    body: object
    summary: tuple[str, ...] = ()  # devloop.runresult: what ran, what failed and why
    what: str = "run"  # or "webhook <event> (signed)": a test delivery (devloop.webhooktest)


@dataclass(frozen=True)
class Serving(Event):
    """The local URL that answers for the pod being served (devloop.localurl)."""

    url: str


@dataclass(frozen=True)
class Connected(Event):
    context: str
    server: str
    namespace: str
    embedded: bool
