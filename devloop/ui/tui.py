"""`pdwatch DIR` in a terminal: a live dashboard of the dev loop (Textual).

A consumer of the loop's events and a caller of its control methods; it never talks to
the cluster. Log lines are buffered and written in batches every 100 ms, so a flood of
them costs one widget update per tick, not one per line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from textual import on
from textual._context import NoActiveAppError, active_app
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from devloop import events, inert
from devloop.codediff import unified
from devloop.history import Revision
from devloop.kube.errors import KubeError
from devloop.render import Bundle
from devloop.ui.screens import HistoryScreen, TextScreen
from devloop.ui.timeline import CycleRow, update
from devloop.ui.widgets import (
    MAX_LOG_LINES,
    HeaderBar,
    LogView,
    PodPanel,
    PodView,
    ProblemsPanel,
    Session,
    Timeline,
)

FLUSH_MAX = 2_500  # log lines written per 100 ms tick: 25,000 lines/s


class Controller(Protocol):
    """What the TUI needs from the loop (DevLoop provides it)."""

    @property
    def paused(self) -> bool: ...
    @property
    def deployed(self) -> Bundle | None: ...
    @property
    def previous_deployed(self) -> Bundle | None: ...

    async def run(self) -> None: ...
    def redeploy(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    async def trigger_run(self, body: object = None) -> events.RunResult: ...
    async def send_webhook(self) -> events.RunResult: ...
    async def history(self) -> tuple[list[Revision], str | None]: ...
    def rollback(self, number: int) -> None: ...
    def quit(self) -> None: ...


class LoopEvent(Message):
    def __init__(self, event: events.Event) -> None:
        super().__init__()
        self.event = event


def bundle_diff(before: Bundle | None, after: Bundle | None) -> str:
    if after is None:
        return "Nothing deployed yet."
    if before is None:
        return "The running deploy is pdwatch's first: there is nothing to compare it with."
    if before.content_hash == after.content_hash:
        return "The previous deploy ran the same code (a redeploy, or a change outside the code)."
    old = {f.path: f.text for f in before.files}
    new = {f.path: f.text for f in after.files}
    text = unified(old, new, "previous", "running")
    return text or "The code is the same; the deploy differs elsewhere."


HELP = """\
r   redeploy now (restarts the pod even when nothing changed)
p   pause / resume watching (changes made while paused deploy on resume)
t   trigger a run of the workflow (POST /run) and show its JSON result
w   send a test webhook delivery (a webhook trigger's event, signed with its secret)
d   diff: what changed between the running deploy and the previous one
h   deploy history: Enter compares a revision with what is live, u rolls back to it
c   clear the logs
/   filter the logs: Enter keeps the filter, Esc clears it
?   this help
q   quit (with --cleanup-on-exit, the workflow is removed first)

The deploys table has a row per cycle: what changed, how long rendering and applying
took, the rollout's progress, and its outcome: ✓ with the time from your save to the
new pod being Ready, or ✗ with the reason. Narrower than 80 columns for the table (a
terminal under 100 columns wide), the render and apply times are left out.

Ctrl+P opens the command palette with the same actions."""


class PdwatchApp(App[int]):
    TITLE = "pdwatch"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    CSS = """
    #top { height: 1fr; min-height: 6; }
    Timeline { width: 1fr; border: round $primary; }
    PodPanel { width: 38; height: 100%; border: round $primary; padding: 0 1; }
    .-narrow PodPanel { width: 28; }
    /* Below 100 columns the footer leaves out its `^p palette` hint (the help says it), so
       `q Quit` and `? Help`, its last keys, still fit at 80. */
    .-narrow FooterKey.-command-palette { display: none; }
    ProblemsPanel { height: auto; max-height: 10; border: round $error; padding: 0 1; }
    LogView { height: 2fr; border: round $primary; }
    #filter { display: none; }
    """
    BINDINGS = [
        Binding("r", "redeploy", "Redeploy"),
        Binding("p", "pause", "Pause"),
        Binding("t", "trigger", "Run"),
        Binding("w", "webhook", "Webhook", show=False),  # in the help and the palette
        Binding("d", "diff", "Diff"),
        Binding("h", "history", "History"),
        Binding("c", "clear", "Clear logs", show=False),  # in the help and the palette
        Binding("slash", "filter", "Filter"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_pdwatch", "Quit"),
        Binding("ctrl+c", "quit_pdwatch", "Quit", show=False, priority=True),
        Binding("escape", "close_filter", "Close filter", show=False),
    ]

    def __init__(
        self,
        controller: Controller,
        session: Session,
        clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
    ) -> None:
        super().__init__()
        self.controller = controller
        self.session = session
        self.clock = clock
        self.rows: dict[int, CycleRow] = {}
        self.current = 0
        self.state, self.state_detail = "starting", ""
        self.pods = PodView()
        self.problems: list[str] = []
        self.warnings: list[str] = []  # of the last render; shown under any problem
        self.pending_logs: list[str] = []
        self.log_pod = ""
        self.loop_worker: Worker[None] | None = None

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="top"):
            yield Timeline(id="timeline")
            yield PodPanel(id="pod")
        yield ProblemsPanel(id="problems")
        yield LogView(id="logs")
        yield Input(placeholder="filter the logs (Esc closes)", id="filter")
        yield Footer()

    def on_mount(self) -> None:
        # The main screen's panels, kept: App.query_one searches the *current* screen, and
        # events keep arriving while a modal (help, diff, run result) is on top.
        self.header = self.query_one(HeaderBar)
        self.timeline = self.query_one(Timeline)
        self.pod_panel = self.query_one(PodPanel)
        self.problems_panel = self.query_one(ProblemsPanel)
        self.log_view = self.query_one(LogView)
        self.filter_field = self.query_one("#filter", Input)
        self.timeline.border_title = "deploys"
        self.pod_panel.border_title = "pod"
        self.log_view.border_title = "logs"
        self.problems_panel.border_title = "problems"
        self.problems_panel.show([])
        self.refresh_header()
        self.refresh_pod()
        self.set_interval(0.1, self.flush_logs)
        self.loop_worker = self.run_worker(self.controller.run(), name="loop", exit_on_error=False)

    # --- events in ---------------------------------------------------------------------------

    def emit(self, event: events.Event) -> None:
        """The loop's sink. Log lines are only queued here; everything else is a message."""
        event = inert.event(event)  # nothing from outside drives the terminal
        if isinstance(event, events.LogLine):
            if event.pod != self.log_pod:
                self.log_pod = event.pod
                self.pending_logs.append(f"──── {event.pod} ────")
            self.pending_logs.append(f"[{event.pod[-5:]}] {event.text}")
            return
        try:
            message = LoopEvent(event)
        except NoActiveAppError:
            # A Message needs Textual's active_app context variable; code reached through a
            # thread's callback can run without it (seen as a rare flaky test failure).
            active_app.set(self)
            message = LoopEvent(event)
        self.post_message(message)

    def flush_logs(self) -> None:
        """Every 100 ms: at most FLUSH_MAX lines, so a flood never stalls the screen; lines
        the 10,000-line bound would prune at once are not written at all."""
        if self.pending_logs:
            backlog = self.pending_logs[-MAX_LOG_LINES:]
            lines, self.pending_logs = backlog[:FLUSH_MAX], backlog[FLUSH_MAX:]
            self.log_view.add(lines)

    def on_loop_event(self, message: LoopEvent) -> None:
        event = message.event
        match event:
            case events.CycleStarted(cycle=number, changed=changed, reason=reason):
                self.current = number
                change = ", ".join(changed) if changed else reason
                self.rows[number] = CycleRow(number, self.clock(), change)
            case events.Connected(context=context, namespace=namespace, embedded=embedded):
                self.session.context, self.session.namespace = context, namespace
                self.session.embedded = embedded
            case events.Serving(url=url):
                self.session.url = url
            case events.LoopState(state=state, detail=detail):
                self.state, self.state_detail = state, detail
            case events.PreflightReport(lines=lines, ok=ok):
                self.problems = (
                    []
                    if ok
                    else [line.strip() for line in lines if not line.strip().startswith("✓")]
                )
            case events.RenderFailed(problems=problems):
                self.problems = []
                for p in (p for p in problems if p.is_error):
                    self.problems.append(f"{p}")
                    if p.source:  # never set for a secrets file
                        self.problems.append(f"    {p.source.strip()}")
                # the warnings and notes once, below the errors (not again from the last
                # render that worked)
                self.warnings = [f"{p.severity}: {p}" for p in problems if not p.is_error]
            case events.Rendered(warnings=warnings):
                self.warnings = [f"{p.severity}: {p}" for p in warnings]
            case events.Error(message=text, details=details):
                self.problems = [text, *details]
            case events.Explained(what=what, fix=fix):
                # what happened and what to do first, under the headline; the raw lines
                # (a crash's last log lines) after them, where the panel may cut them off
                head, rest = self.problems[:1], self.problems[1:]
                self.problems = [*head, f"→ {what}", f"  to fix: {fix}", *rest]
            case events.RolloutFailed(pod=pod, reason=reason, message=text, last_logs=logs):
                self.problems = [f"{reason}: {text}", *(f"  | {line}" for line in logs)]
                self.pods.rolling = pod or self.pods.rolling
                self.pods.rolling_status = f"✗ {reason}"
            case events.Retrying(what=what, attempt=attempt, error=error, delay_s=delay):
                self.problems = [f"{what} failed: {error}; retry {attempt} in {delay:.1f} s"]
            case events.PodProgress(pod=pod, step="restarted", detail=detail):
                if pod == self.pods.serving:
                    self.pods.serving_restarts = detail
            case events.PodProgress(pod=pod, step=step, detail=detail):
                if pod != self.pods.rolling:
                    self.pods.rolling, self.pods.notes = pod, []
                if step == "warning":
                    self.pods.notes.append(detail)
                else:
                    self.pods.rolling_status = step
            case events.PodReady(pod=pod, ms=took):
                if pod != self.pods.serving:
                    self.pods.replaced, self.pods.serving = self.pods.serving, pod
                    self.pods.serving_restarts = ""
                self.pods.serving_status = f"Ready since {self.clock()} ({took / 1000:.1f} s)"
                self.pods.rolling = self.pods.rolling_status = ""
            case events.CycleFinished(outcome=outcome):
                if outcome in ("ready", "unchanged", "applied"):
                    self.problems = []
            case events.Recorded() if isinstance(self.top_screen(), HistoryScreen):
                self.run_worker(self.reload_history(), name="history", exit_on_error=False)
            case events.RunResult(status=status, body=body, summary=summary, what=what):
                # as the engine wrote it: "é", not "\u00e9"
                shown = (
                    body
                    if isinstance(body, str)
                    else json.dumps(body, indent=2, ensure_ascii=False)
                )
                self.push_screen(
                    TextScreen(
                        f"{what} → HTTP {status}",
                        shown,
                        "" if isinstance(body, str) else "json",
                        preamble="\n".join(summary),
                    )
                )
        if self.current in self.rows:
            row = update(self.rows[self.current], event)
            self.timeline.show(row)
        self.refresh_header()
        self.refresh_pod()
        self.problems_panel.show(self.problems + self.warnings)

    def top_screen(self) -> Screen[object] | None:
        """The screen on top; None once the app is closing (its stack empty), when the
        loop's last events may still arrive."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def refresh_header(self) -> None:
        deployed = self.controller.deployed
        if deployed is not None:
            self.session.workflow = f"{deployed.workflow.name} v{deployed.workflow.version}"
            self.session.image = deployed.image.image
            self.session.format = deployed.format.format
        self.header.show(self.session, self.state, self.state_detail)

    def refresh_pod(self) -> None:
        deployed = self.controller.deployed
        files = (
            [f.path.removeprefix("nodes/") for f in deployed.files if f.path.startswith("nodes/")]
            if deployed
            else []
        )
        self.pod_panel.show(self.pods, files)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.loop_worker and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            self.exit(0)

    # --- actions -----------------------------------------------------------------------------

    def action_redeploy(self) -> None:
        self.controller.redeploy()
        self.notify("redeploying")

    def action_pause(self) -> None:
        if self.controller.paused:
            self.controller.resume()
            self.notify("watching again")
        else:
            self.controller.pause()
            self.notify("paused: changes are deployed on resume")

    def action_trigger(self) -> None:
        self.run_worker(self.controller.trigger_run({}), name="trigger", exit_on_error=False)

    def action_webhook(self) -> None:
        self.run_worker(self.controller.send_webhook(), name="webhook", exit_on_error=False)

    def action_diff(self) -> None:
        body = bundle_diff(self.controller.previous_deployed, self.controller.deployed)
        self.push_screen(TextScreen("running deploy vs the previous one", body, "diff"))

    def action_history(self) -> None:
        self.run_worker(self.show_history(), name="history", exit_on_error=False)

    async def show_history(self) -> None:
        try:
            revisions, live = await self.controller.history()
        except KubeError as exc:
            self.notify(f"the deploy history could not be read: {exc}", severity="error")
            return
        self.push_screen(HistoryScreen(revisions, live, self.controller.rollback))

    async def reload_history(self) -> None:
        """An open history screen shows a revision recorded while it was open."""
        try:
            revisions, live = await self.controller.history()
        except KubeError:
            return  # it keeps what it showed; h reads it again
        screen = self.top_screen()
        if isinstance(screen, HistoryScreen):
            screen.show(revisions, live)

    def action_clear(self) -> None:
        self.log_view.clear_all()

    def action_filter(self) -> None:
        field = self.filter_field
        field.display = True
        field.focus()

    def action_close_filter(self) -> None:
        """Esc: the filter is cleared and closed."""
        field = self.filter_field
        field.value = ""
        field.display = False
        self.log_view.set_filter("")
        self.log_view.border_title = "logs"

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.log_view.set_filter(event.value)

    @on(Input.Submitted, "#filter")
    def filter_kept(self, event: Input.Submitted) -> None:
        """Enter: the field closes, the filter stays (the log panel's title says which)."""
        self.filter_field.display = False
        self.log_view.border_title = (
            f"logs · filter: {event.value} (Esc clears)" if event.value else "logs"
        )
        self.log_view.focus()

    def action_help(self) -> None:
        self.push_screen(TextScreen("pdwatch keys", HELP))

    def action_quit_pdwatch(self) -> None:
        self.state, self.state_detail = "stopping", ""
        self.refresh_header()
        self.controller.quit()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action once. Textual's own "Quit" is left out: it ends the app without
        telling the loop (no --cleanup-on-exit), and pdwatch's Quit is below."""
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command
        yield SystemCommand(
            "Redeploy now", "Restart the pod even if nothing changed", self.action_redeploy
        )
        yield SystemCommand(
            "Pause / resume watching", "Hold deploys; resume deploys once", self.action_pause
        )
        yield SystemCommand(
            "Trigger a run", "POST /run and show the JSON result", self.action_trigger
        )
        yield SystemCommand(
            "Send a test webhook delivery",
            "To /webhook/github, signed with the workflow's secret",
            self.action_webhook,
        )
        yield SystemCommand(
            "Diff with the previous deploy", "Unified diff of the code", self.action_diff
        )
        yield SystemCommand(
            "Deploy history", "Revisions, their diffs, roll back", self.action_history
        )
        yield SystemCommand("Clear logs", "Empty the log panel", self.action_clear)
        yield SystemCommand(
            "Filter logs", "Show only lines containing a text (Esc clears)", self.action_filter
        )
        yield SystemCommand("Help", "pdwatch's keys and what the panels show", self.action_help)
        yield SystemCommand(
            "Quit pdwatch", "Stop watching (cleanup if asked)", self.action_quit_pdwatch
        )
