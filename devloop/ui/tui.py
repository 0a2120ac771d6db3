"""`pdwatch DIR` in a terminal: a live dashboard of the dev loop (Textual).

A consumer of the loop's events and a caller of its control methods; it never talks to
the cluster. Log lines are buffered and written in batches every 100 ms, so a flood of
them costs one widget update per tick, not one per line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, cast

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
from devloop.ui.widgets import (
    HeaderBar,
    LogView,
    PodPanel,
    ProblemsPanel,
    Timeline,
    WorkflowsBar,
)
from devloop.ui.workflowview import MAX_LOG_LINES, Session, WorkflowView, fold, log_lines

FLUSH_MAX = 2_500  # log lines written per 100 ms tick: 25,000 lines/s


class Runner(Protocol):
    """What runs and ends the session."""

    async def run(self) -> None: ...
    def quit(self) -> None: ...


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
    def __init__(self, event: events.Event, workflow: str | None = "") -> None:
        """`workflow`: whose event ("" in a session of one; None: the whole session's)."""
        super().__init__()
        self.event = event
        self.workflow = workflow


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
] [ with several workflows: show the next / previous one (1-9: the n-th); the keys act
    on the workflow shown

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
        # several workflows in the session: which one is shown (the keys act on it)
        Binding("right_square_bracket", "next_workflow", "Next workflow", show=False),
        Binding("left_square_bracket", "previous_workflow", "Previous workflow", show=False),
        *(Binding(str(n), f"workflow({n})", f"Workflow {n}", show=False) for n in range(1, 10)),
    ]

    def __init__(
        self,
        controller: Runner,
        session: Session,
        clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
        workflows: Mapping[str, tuple[Controller, Session]] | None = None,
    ) -> None:
        """One workflow: `controller` and `session` are its. Several: `controller` runs and
        quits the session, and `workflows` has each one's controller and facts; the keys
        act on the workflow shown (] and [ switch)."""
        super().__init__()
        self.runner = controller
        self.clock = clock
        # one workflow: the runner is its controller too
        workflows = workflows or {"": (cast(Controller, controller), session)}
        self.controllers = {name: c for name, (c, _) in workflows.items()}
        self.views = {name: WorkflowView(s) for name, (_, s) in workflows.items()}
        self.shown = next(iter(self.views))
        self.pending_logs: list[str] = []
        self.loop_worker: Worker[None] | None = None

    @property
    def view(self) -> WorkflowView:
        """The workflow shown."""
        return self.views[self.shown]

    @property
    def controller(self) -> Controller:
        """The shown workflow's: what the keys act on."""
        return self.controllers[self.shown]

    @property
    def session(self) -> Session:
        return self.view.session

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        yield WorkflowsBar(id="workflows")
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
        self.workflows_bar = self.query_one(WorkflowsBar)
        self.workflows_bar.display = len(self.views) > 1
        self.refresh_workflows()
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
        self.loop_worker = self.run_worker(self.runner.run(), name="loop", exit_on_error=False)

    # --- events in ---------------------------------------------------------------------------

    def emit(self, event: events.Event) -> None:
        """The loop's sink (a session of one). Log lines are only queued here; everything
        else is a message."""
        self.emit_for("", event)

    def emitter(self, workflow: str | None) -> Callable[[events.Event], None]:
        """The sink of one workflow of several (None: the session's own events)."""
        return lambda event: self.emit_for(workflow, event)

    def emit_for(self, workflow: str | None, event: events.Event) -> None:
        event = inert.event(event)  # nothing from outside drives the terminal
        if isinstance(event, events.LogLine) and workflow is not None:
            lines = log_lines(self.views[workflow], event)
            if workflow == self.shown:
                self.pending_logs.extend(lines)
            return
        try:
            message = LoopEvent(event, workflow)
        except NoActiveAppError:
            # A Message needs Textual's active_app context variable; code reached through a
            # thread's callback can run without it (seen as a rare flaky test failure).
            active_app.set(self)
            message = LoopEvent(event, workflow)
        self.post_message(message)

    def flush_logs(self) -> None:
        """Every 100 ms: at most FLUSH_MAX lines, so a flood never stalls the screen; lines
        the 10,000-line bound would prune at once are not written at all."""
        if self.pending_logs:
            backlog = self.pending_logs[-MAX_LOG_LINES:]
            lines, self.pending_logs = backlog[:FLUSH_MAX], backlog[FLUSH_MAX:]
            self.log_view.add(lines)

    def on_loop_event(self, message: LoopEvent) -> None:
        if message.workflow is None:  # the session's: every workflow's
            for name in self.views:
                self.apply(name, message.event)
        else:
            self.apply(message.workflow, message.event)
        self.refresh_workflows()

    def apply(self, workflow: str, event: events.Event) -> None:
        """One event into its workflow's view; the screen follows when it is shown."""
        view = self.views[workflow]
        row = fold(view, event, self.clock())
        match event:
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
        if workflow == self.shown:
            if row is not None:
                self.timeline.show(row)
            self.refresh_header()
            self.refresh_pod()
            self.problems_panel.show(view.problems + view.warnings)

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
        self.header.show(self.session, self.view.state, self.view.state_detail)

    def refresh_workflows(self) -> None:
        if len(self.views) > 1:
            self.workflows_bar.show(
                [(name, v.state, v.outcome) for name, v in self.views.items()], self.shown
            )

    def show_workflow(self, name: str) -> None:
        """Another workflow's deploys, pod, problems and logs on screen."""
        if name == self.shown or name not in self.views:
            return
        self.shown = name
        view = self.view
        self.pending_logs = []
        self.timeline.replace(view.rows.values())
        self.log_view.replace(list(view.logs))
        self.refresh_header()
        self.refresh_pod()
        self.problems_panel.show(view.problems + view.warnings)
        self.refresh_workflows()

    def action_next_workflow(self) -> None:
        names = list(self.views)
        self.show_workflow(names[(names.index(self.shown) + 1) % len(names)])

    def action_previous_workflow(self) -> None:
        names = list(self.views)
        self.show_workflow(names[(names.index(self.shown) - 1) % len(names)])

    def action_workflow(self, number: int) -> None:
        names = list(self.views)
        if 0 < number <= len(names):
            self.show_workflow(names[number - 1])

    def refresh_pod(self) -> None:
        deployed = self.controller.deployed
        files = (
            [f.path.removeprefix("nodes/") for f in deployed.files if f.path.startswith("nodes/")]
            if deployed
            else []
        )
        self.pod_panel.show(self.view.pods, files)

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
        self.view.logs.clear()
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
        for view in self.views.values():
            view.state, view.state_detail = "stopping", ""
        self.refresh_header()
        self.refresh_workflows()
        self.runner.quit()

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
