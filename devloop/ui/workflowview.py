"""What the TUI shows of one workflow, folded from its events: pure, no widgets.

The TUI puts a view on screen and does what only it can (a run's result in a window, the
history reloaded); what the view says is decided here, tested by tables
(tests/test_workflowview.py). A finished cycle's row never changes again (timeline.update).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from devloop import events
from devloop.ui.timeline import CycleRow, update

MAX_LOG_LINES = 10_000  # kept per workflow; older lines are dropped


@dataclass
class Session:
    """Facts about where pdwatch deploys, for the header."""

    directory: str
    context: str
    embedded: bool
    namespace: str
    image: str = ""
    workflow: str = ""
    format: str = ""  # pipedreamer or tentacular: which reference's deploy pdwatch makes
    url: str = ""  # the local URL to the pod being served (devloop.localurl)


@dataclass
class PodView:
    """The pod that serves now, and the one this cycle rolls out (until it is Ready)."""

    serving: str = ""
    serving_status: str = ""
    serving_restarts: str = ""
    rolling: str = ""
    rolling_status: str = ""
    replaced: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class WorkflowView:
    """One workflow's deploys, pods, problems and logs; kept while another workflow of the
    session is shown."""

    session: Session
    rows: dict[int, CycleRow] = field(default_factory=dict)
    current: int = 0
    state: str = "starting"
    state_detail: str = ""
    pods: PodView = field(default_factory=PodView)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # of the last render
    logs: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    log_pod: str = ""
    outcome: str = ""  # the last finished cycle's, for the workflows bar


def log_lines(view: WorkflowView, line: events.LogLine) -> list[str]:
    """The lines a log line adds (a rule when its pod is not the last line's), kept."""
    lines = []
    if line.pod != view.log_pod:
        view.log_pod = line.pod
        lines.append(f"──── {line.pod} ────")
    lines.append(f"[{line.pod[-5:]}] {line.text}")
    view.logs.extend(lines)
    return lines


def fold(view: WorkflowView, event: events.Event, now: str) -> CycleRow | None:
    """The view after one more event (`now`: the clock as shown), and the row of the
    current cycle (to show; a finished one comes back unchanged)."""
    pods = view.pods
    match event:
        case events.CycleStarted(cycle=number, changed=changed, reason=reason):
            view.current = number
            view.rows[number] = CycleRow(number, now, ", ".join(changed) if changed else reason)
        case events.Connected(context=context, namespace=namespace, embedded=embedded):
            view.session.context, view.session.namespace = context, namespace
            view.session.embedded = embedded
        case events.Serving(url=url):
            view.session.url = url
        case events.LoopState(state=state, detail=detail):
            view.state, view.state_detail = state, detail
        case events.PreflightReport(lines=lines, ok=ok):
            view.problems = (
                [] if ok else [line.strip() for line in lines if not line.strip().startswith("✓")]
            )
        case events.RenderFailed(problems=problems):
            view.problems = []
            for p in (p for p in problems if p.is_error):
                view.problems.append(f"{p}")
                if p.source:  # never set for a secrets file
                    view.problems.append(f"    {p.source.strip()}")
            # the warnings and notes once, below the errors (not again from the last
            # render that worked)
            view.warnings = [f"{p.severity}: {p}" for p in problems if not p.is_error]
        case events.Rendered(warnings=warnings):
            view.warnings = [f"{p.severity}: {p}" for p in warnings]
        case events.Error(message=text, details=details):
            view.problems = [text, *details]
        case events.Explained(what=what, fix=fix):
            # what happened and what to do first, under the headline; the raw lines (a
            # crash's last log lines) after them, where the panel may cut them off
            head, rest = view.problems[:1], view.problems[1:]
            view.problems = [*head, f"→ {what}", f"  to fix: {fix}", *rest]
        case events.RolloutFailed(pod=pod, reason=reason, message=text, last_logs=logs):
            view.problems = [f"{reason}: {text}", *(f"  | {line}" for line in logs)]
            pods.rolling = pod or pods.rolling
            pods.rolling_status = f"✗ {reason}"
        case events.Retrying(what=what, attempt=attempt, error=error, delay_s=delay):
            view.problems = [f"{what} failed: {error}; retry {attempt} in {delay:.1f} s"]
        case events.PodProgress(pod=pod, step="restarted", detail=detail):
            if pod == pods.serving:
                pods.serving_restarts = detail
        case events.PodProgress(pod=pod, step=step, detail=detail):
            if pod != pods.rolling:
                pods.rolling, pods.notes = pod, []
            if step == "warning":
                pods.notes.append(detail)
            else:
                pods.rolling_status = step
        case events.PodReady(pod=pod, ms=took):
            if pod != pods.serving:
                pods.replaced, pods.serving = pods.serving, pod
                pods.serving_restarts = ""
            pods.serving_status = f"Ready since {now} ({took / 1000:.1f} s)"
            pods.rolling = pods.rolling_status = ""
        case events.CycleFinished(outcome=outcome):
            view.outcome = outcome
            if outcome in ("ready", "unchanged", "applied"):
                view.problems = []
    row = view.rows.get(view.current)
    return update(row, event) if row is not None else None
