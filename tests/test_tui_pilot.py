"""The TUI driven by Textual's Pilot, with the real loop on the cluster under test."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from devloop import events
from devloop.kube.client import Kube
from devloop.loop import DevLoop, LoopSettings
from devloop.ui.screens import ConfirmScreen, HistoryScreen, TextScreen
from devloop.ui.tui import PdwatchApp
from devloop.ui.widgets import (
    HeaderBar,
    LogView,
    PodPanel,
    ProblemsPanel,
    Session,
    Timeline,
    WorkflowsBar,
    fit_pod_name,
)
from tests.helpers import node_code
from tests.target import REAL, context_name, render_options

EXAMPLES = Path(__file__).parent.parent / "examples"


class Seen:
    """Every event the loop emitted, so the test can wait for one."""

    def __init__(self, app: PdwatchApp) -> None:
        self.events: list[events.Event] = []
        self.app_emit = app.emit
        self.new = asyncio.Event()

    def __call__(self, event: events.Event) -> None:
        self.events.append(event)
        self.new.set()
        self.app_emit(event)

    async def until(
        self, predicate: Callable[[events.Event], bool], since: int = 0, timeout: float = 20
    ) -> events.Event:
        async def find() -> events.Event:
            while True:
                for event in self.events[since:]:
                    if predicate(event):
                        return event
                self.new.clear()
                await self.new.wait()

        return await asyncio.wait_for(find(), timeout)


@asynccontextmanager
async def tui(
    tmp_path: Path, kube: Kube
) -> AsyncIterator[tuple[PdwatchApp, Pilot[Any], Seen, Path]]:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    loop = DevLoop(
        LoopSettings(directory, render_options(kube.namespace), context_name()),
        kube,
        lambda e: None,
    )
    session = Session(str(directory), context_name(), REAL is None, kube.namespace)
    app = PdwatchApp(loop, session)
    seen = Seen(app)
    loop.emit = seen
    async with app.run_test(size=(120, 40)) as pilot:
        await seen.until(lambda e: isinstance(e, events.CycleFinished))
        await pilot.pause(0.2)
        yield app, pilot, seen, directory


def text_of(widget: Any) -> str:
    return str(widget.render())


async def test_first_deploy_shows_header_timeline_pod_and_logs(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, _):
        header = text_of(app.query_one(HeaderBar))
        assert "hello v1.0" in header and "● watching" in header
        assert ("embedded cluster" if REAL is None else context_name()) in header
        table = app.query_one(Timeline)
        assert table.row_count == 1
        assert str(table.get_cell("1", "outcome")).startswith("✓")
        pod = next(e.pod for e in seen.events if isinstance(e, events.PodReady))
        assert pod in text_of(app.query_one(PodPanel))
        await pilot.pause(0.3)
        logs = list(app.query_one(LogView).lines_kept)
        assert f"──── {pod} ────" in logs
        assert f"[{pod[-5:]}] Pipedreamer Engine starting..." in logs


async def test_r_redeploys(tmp_path: Path, api_client: client.ApiClient, namespace: str) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, _):
        mark = len(seen.events)
        await pilot.press("r")
        restart = await seen.until(lambda e: isinstance(e, events.RestartTriggered), mark)
        assert isinstance(restart, events.RestartTriggered) and restart.via == "restartedAt"
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.pause(0.1)
        assert app.query_one(Timeline).row_count == 2


async def test_p_pauses_and_resumes(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        await pilot.press("p")
        await pilot.pause(0.1)
        assert "● paused" in text_of(app.query_one(HeaderBar))
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(node_code("held back"))
        # held back, and said so with what waits (issue 29 §7)
        await seen.until(
            lambda e: (
                isinstance(e, events.LoopState)
                and e.detail == "1 changed file(s) wait: nodes/greet.ts; deployed on resume"
            ),
            mark,
        )
        await pilot.pause(0.1)
        assert "1 changed file(s) wait" in text_of(app.query_one(HeaderBar))
        assert not [e for e in seen.events[mark:] if isinstance(e, events.CycleStarted)]
        await pilot.press("p")
        finished = await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        assert isinstance(finished, events.CycleFinished) and finished.outcome == "ready"
        await seen.until(lambda e: isinstance(e, events.LogLine) and e.text == "held back", mark)


async def test_t_triggers_a_run_and_shows_its_json(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, _):
        mark = len(seen.events)
        await pilot.press("t")
        result = await seen.until(lambda e: isinstance(e, events.RunResult), mark)
        await pilot.pause(0.2)
        assert isinstance(app.screen, TextScreen)
        assert app.screen.title_text == "run → HTTP 200"
        # the engine's JSON result, whatever the engine put in it, shown indented
        assert isinstance(result, events.RunResult) and isinstance(result.body, dict)
        assert app.screen.body == json.dumps(result.body, indent=2, ensure_ascii=False)
        # the greeting the example's node computes, and above it what the run did
        assert result.body["outputs"] == {"greet": {"message": "Hello, world!"}}
        preamble = str(app.screen.query_one("#preamble", Static).render())
        assert preamble.startswith("ran 1 node in ") and "all succeeded" in preamble
        await pilot.press("escape")
        assert not isinstance(app.screen, TextScreen)


async def test_w_on_a_workflow_without_a_webhook_says_why(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, _):
        mark = len(seen.events)
        await pilot.press("w")
        await seen.until(lambda e: isinstance(e, events.RunResult), mark)
        for _ in range(100):  # the app's turns until it has shown the result
            if isinstance(app.screen, TextScreen):
                break
            await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        assert app.screen.title_text == "webhook → HTTP 0"
        assert app.screen.body == "the workflow has no webhook trigger (t runs it: POST /run)"


async def test_d_shows_the_diff_against_the_previous_deploy(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        await pilot.press("d")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextScreen)
        assert "pdwatch's first" in app.screen.body
        await pilot.press("escape")
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(node_code("v2"))
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextScreen)
        body = app.screen.body
        assert "--- previous/nodes/greet.ts" in body and "+++ running/nodes/greet.ts" in body
        assert '+console.log("v2");' in body
        await pilot.press("escape")
        # Right after a redeploy, the previous deploy is the one `r` restarted: same code.
        mark = len(seen.events)
        await pilot.press("r")
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.press("d")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextScreen)
        assert "previous deploy ran the same code" in app.screen.body


async def test_c_clears_and_slash_filters_logs(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        await pilot.pause(0.3)
        log = app.query_one(LogView)
        await pilot.press("slash")
        await pilot.press(*"stage")
        await pilot.pause(0.1)
        assert log.pattern is not None
        shown = [str(line) for line in log.lines]
        assert shown and all("stage" in line.lower() for line in shown)
        # Enter closes the field and keeps the filter; the panel's title says which.
        field = app.query_one("#filter")
        await pilot.press("enter")
        assert not field.display and log.pattern is not None
        assert app.focused is log and "filter: stage" in str(log.border_title)
        assert [str(line) for line in log.lines] == shown
        # Esc (the field closed) clears it.
        await pilot.press("escape")
        assert log.pattern is None and len(log.lines) == len(log.lines_kept)
        assert log.border_title == "logs"
        await pilot.press("slash")
        await pilot.press(*"stage")
        await pilot.press("escape")
        assert not field.display and log.pattern is None
        app.set_focus(None)
        await pilot.press("c")
        assert not log.lines_kept and log.line_count == 0


async def test_validation_error_then_fix_in_the_problems_panel(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        good = (directory / "workflow.yaml").read_text()
        mark = len(seen.events)
        noted = good + "sidecars:\n  - name: proxy\n"  # a note: shown, stops nothing
        (directory / "workflow.yaml").write_text(noted)
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        mark = len(seen.events)
        (directory / "workflow.yaml").write_text(
            noted.replace("path: ./nodes/greet.ts", "path: ./nodes/missing.ts")
        )
        finished = await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.pause(0.1)
        panel = app.query_one(ProblemsPanel)
        assert panel.display
        text = text_of(panel)
        assert "workflow.yaml:8:11: node 'greet'" in text
        assert "path: ./nodes/missing.ts" in text  # the offending source line
        # the note once (it was shown twice: from this render and the last good one), and
        # the deploys row counts errors as the header does (issue 29 §5)
        assert text.count("sidecars are accepted") == 1, text
        assert "1 problem(s)" in text_of(app.query_one(HeaderBar))
        row = str(app.query_one(Timeline).get_cell(str(finished.cycle), "outcome"))
        assert "✗ 1 problem(s)" in row, row
        assert "● error" in text_of(app.query_one(HeaderBar))
        mark = len(seen.events)
        (directory / "workflow.yaml").write_text(good.replace('"1.0"', '"1.1"'))
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.pause(0.1)
        assert not panel.display


async def test_rollout_failure_in_the_problems_panel(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(
            'throw new Error("nope");\nexport default async function run() {}\n'
        )
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await pilot.pause(0.1)
        text = text_of(app.query_one(ProblemsPanel))
        assert text.startswith("Error: the engine exited with code 1")
        assert "Engine failed to start: Error: nope" in text
        # what happened and what to do first, the engine's lines after them (issue 29 §4:
        # the lines filled the panel's rows and the explanation was below the fold)
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines[1].startswith("→ the engine failed in nodes/greet.ts:1:7"), lines
        assert lines[2].strip().startswith("to fix: fix nodes/greet.ts at line 1"), lines
        assert "✗ Error" in text_of(app.query_one(PodPanel))


async def test_help_and_command_palette(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextScreen) and "r   redeploy now" in app.screen.body
        await pilot.press("escape")
        commands = list(app.get_system_commands(app.screen))
        titles = [c.title for c in commands]
        assert len(titles) == len(set(titles))
        # Every action of the footer, each exactly once in the palette (Filter and Help too);
        # Textual's own Quit would end the app without the loop's cleanup: only pdwatch's.
        for binding in PdwatchApp.BINDINGS:
            if isinstance(binding, Binding) and binding.show:
                action = getattr(app, f"action_{binding.action}")
                assert [c.title for c in commands if c.callback == action] != [], binding
                assert len([c for c in commands if c.callback == action]) == 1, binding
        assert [t for t in titles if "Quit" in t] == ["Quit pdwatch"]


async def test_q_quits_and_stops_the_loop(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        await pilot.press("q")
        await pilot.pause(0.5)
        assert app.controller.stopping.is_set()  # type: ignore[attr-defined]
    assert app.return_code == 0


async def test_deploys_continue_while_a_modal_is_open(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, TextScreen)
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(node_code("behind the modal"))
        await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        await seen.until(
            lambda e: isinstance(e, events.LogLine) and e.text == "behind the modal", mark
        )
        await pilot.pause(0.3)
        await pilot.press("escape")
        assert app.query_one(Timeline).row_count == 2
        assert any("behind the modal" in line for line in app.query_one(LogView).lines_kept)


async def test_logs_follow_unless_scrolled_up(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        log = app.query_one(LogView)
        for i in range(60):
            app.emit(events.LogLine("hello-abc-x1y2z", f"line {i}"))
        await pilot.pause(0.3)
        assert log.is_vertical_scroll_end and log.max_scroll_y > 0  # following the end
        log.scroll_home(animate=False)
        await pilot.pause(0.1)
        for i in range(60, 80):
            app.emit(events.LogLine("hello-abc-x1y2z", f"line {i}"))
        await pilot.pause(0.3)
        assert log.scroll_y == 0  # scrolled up: new lines do not pull the view down
        assert log.lines_kept[-1].endswith("line 79")
        log.scroll_end(animate=False)
        await pilot.pause(0.1)
        app.emit(events.LogLine("hello-abc-x1y2z", "line 80"))
        await pilot.pause(0.3)
        assert log.is_vertical_scroll_end  # back at the bottom: following again


async def test_logs_keep_following_through_a_flood_and_a_resize(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """Textual's own check stopped following at about line 21,125 of a 100,000-line flood
    (the 10,000-line bound pruning under it), and for good after shrinking the terminal."""
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        log = app.query_one(LogView)
        for chunk in range(40):
            log.add([f"flood {chunk * 2500 + i}" for i in range(2500)])
            if chunk % 10 == 0:
                await pilot.pause(0.05)
        await pilot.pause(0.2)
        assert log.scroll_y == log.max_scroll_y > 0, (log.scroll_y, log.max_scroll_y)
        assert log.lines_kept[-1] == "flood 99999"
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        log.add(["after the resize"])
        await pilot.pause(0.2)
        assert log.scroll_y == log.max_scroll_y, (log.scroll_y, log.max_scroll_y)
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        log.add(["after growing again"])
        await pilot.pause(0.2)
        assert log.scroll_y == log.max_scroll_y


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (40, "uptime-prober-5d8f7c9b6-x2k4q"),
        (29, "uptime-prober-5d8f7c9b6-x2k4q"),
        (28, "…-5d8f7c9b6-x2k4q"),
        (17, "…-5d8f7c9b6-x2k4q"),
        (16, "…-x2k4q"),
        (7, "…-x2k4q"),
        (6, "uptim…"),
    ],
)
def test_a_pod_name_that_does_not_fit_keeps_its_distinct_end(width: int, expected: str) -> None:
    assert fit_pod_name("uptime-prober-5d8f7c9b6-x2k4q", width) == expected


async def until_screen(pilot: Pilot[Any], kind: type, timeout: float = 10) -> Any:
    """The screen once one of `kind` is on top (the history is read from the cluster)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not isinstance(pilot.app.screen, kind):
        assert loop.time() < deadline, f"no {kind.__name__}"
        await pilot.pause(0.05)
    return pilot.app.screen


async def test_h_shows_the_history_enter_compares_u_rolls_back(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, seen, directory):
        first = app.controller.deployed
        assert first is not None
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(node_code("v2"))
        await seen.until(lambda e: isinstance(e, events.Recorded) and e.revision == 2, mark)

        await pilot.press("h")
        screen = await until_screen(pilot, HistoryScreen)
        assert [r.number for r in screen.revisions] == [2, 1]
        assert screen.live is not None and screen.live.number == 2
        await pilot.press("down", "enter")
        diff = await until_screen(pilot, TextScreen)
        assert diff.title_text == "r2 (live) → r1"
        assert '-console.log("v2");' in diff.body
        await pilot.press("escape")
        # `u` on the live revision: said to be live, nothing asked, nothing deployed
        mark = len(seen.events)
        await pilot.press("up", "u")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HistoryScreen)
        assert any("r2 is live already" in n.message for n in app._notifications)
        assert not [e for e in seen.events[mark:] if isinstance(e, events.CycleStarted)]
        await pilot.press("down")

        mark = len(seen.events)
        await pilot.press("u")
        await until_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        started = await seen.until(lambda e: isinstance(e, events.CycleStarted), mark)
        assert isinstance(started, events.CycleStarted) and started.reason == "rollback r1"
        finished = await seen.until(lambda e: isinstance(e, events.CycleFinished), mark)
        assert isinstance(finished, events.CycleFinished) and finished.outcome == "ready"
        state = await seen.until(
            lambda e: isinstance(e, events.LoopState) and "revision 1 is live" in e.detail, mark
        )
        assert "local files differ" in getattr(state, "detail", "")
        await pilot.pause(0.1)
        assert "revision 1 is live" in text_of(app.query_one(HeaderBar))
        assert "rollback r1" in str(app.query_one(Timeline).get_cell(str(finished.cycle), "change"))
        live = client.CoreV1Api(api_client).read_namespaced_config_map("hello-code", namespace)
        assert live.data == first.config_map["data"]

        # the next save deploys the local files again, as usual
        mark = len(seen.events)
        (directory / "nodes" / "greet.ts").write_text(node_code("v3"))
        await seen.until(
            lambda e: isinstance(e, events.CycleFinished) and e.outcome == "ready", mark
        )
        live = client.CoreV1Api(api_client).read_namespaced_config_map("hello-code", namespace)
        assert live.data["nodes__greet.ts"] == node_code("v3")


async def test_an_open_history_shows_a_revision_recorded_meanwhile() -> None:
    """h right after a deploy is Ready may come before its revision is recorded (that runs
    beside the cycles): the open screen shows it once it is."""
    from devloop.history import Revision
    from tests.tuiscript import READY, ScriptedLoop, scripted_app

    def revision(number: int, content_hash: str) -> Revision:
        changed = ("nodes/greet.ts",)
        return Revision(
            number, f"hello-code-r{number}", "2026-11-26", "1.0", content_hash, changed, {}
        )

    app = scripted_app(READY)
    loop = app.controller
    assert isinstance(loop, ScriptedLoop)
    loop.revisions, loop.live_hash = [revision(1, "a" * 64)], "b" * 64
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("h")
        screen = await until_screen(pilot, HistoryScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 1 and table.get_row("1")[0] == ""  # r1 is not live
        loop.revisions = [revision(2, "b" * 64), *loop.revisions]
        app.emit(events.Recorded(2))
        deadline = asyncio.get_running_loop().time() + 10
        while table.row_count != 2:  # condition: the screen read the history again
            assert asyncio.get_running_loop().time() < deadline, "not shown"
            await pilot.pause(0.05)
        assert table.get_row("2")[0] == "live"


def test_lines_still_being_measured_when_the_log_goes_end_quietly() -> None:
    """Textual's Log measures new lines on a worker thread, then hands the width to the
    app; when the log is no longer in an app by then (pdwatch quitting while lines
    arrive), Textual's worker raised NoActiveAppError and the app ended on it (seen once
    in a full run, at a test's shutdown). The measuring step itself, run as the worker
    runs it (a thread, no active app), with a log in no app: it ends quietly."""
    import threading

    from textual.widgets import Log

    def measure(view: Log) -> BaseException | None:
        raised: list[BaseException] = []

        def worker() -> None:
            try:
                type(view)._update_size.__wrapped__(view, 1, ["a line"])  # type: ignore[attr-defined]
            except BaseException as exc:
                raised.append(exc)

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(10)
        return raised[0] if raised else None

    # Textual's own still raises; when it no longer does, LogView._update_size can go
    assert isinstance(measure(Log()), RuntimeError)
    assert measure(LogView()) is None


async def test_escape_sequences_from_outside_reach_the_tui_inert(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """A pod's log line and a cluster message holding an OSC title and an OSC 52 clipboard
    write are shown as visible escapes, in the log view and the problems panel."""
    title, clipboard = "\x1b]0;PWNED\x07", "\x1b]52;c;cHduZWQ=\x07"
    async with tui(tmp_path, Kube(api_client, namespace)) as (app, pilot, _seen, _):
        log, problems = app.query_one(LogView), app.query_one(ProblemsPanel)
        app.emit(events.LogLine("hello-abc-x1y2z", f"log {title}"))
        app.emit(events.RolloutFailed("hello-abc-x1y2z", "Error", f"crashed {clipboard}"))
        for _ in range(100):  # until the log flush (every 100 ms) and the message are shown
            if any("PWNED" in line for line in log.lines_kept) and "cHduZWQ" in str(
                problems.render()
            ):
                break
            await pilot.pause(0.05)
        kept = [line for line in log.lines_kept if "PWNED" in line]
        assert kept == ["[x1y2z] log \\x1b]0;PWNED\\x07"]
        shown = str(problems.render())
        assert "\\x1b]52;c;cHduZWQ=\\x07" in shown and "\x1b" not in shown


async def test_a_revision_recorded_as_the_app_closes_is_no_crash(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """The loop records revisions beside its cycles: one recorded while the app is
    closing (its screen stack already empty) raised ScreenStackError in the test that met
    it, failing CI. It is ignored, as any event for a screen that is gone."""
    from textual._context import active_app

    from devloop.ui.tui import LoopEvent

    async with tui(tmp_path, Kube(api_client, namespace)) as (app, _pilot, _seen, _):
        pass
    assert app.top_screen() is None
    active_app.set(app)
    app.on_loop_event(LoopEvent(events.Recorded(3)))  # must not raise


class Together:
    """Runs the loops of a session of several, as the daemon's runner does."""

    def __init__(self, loops: list[DevLoop]) -> None:
        self.loops = loops

    async def run(self) -> None:
        await asyncio.gather(*(loop.run() for loop in self.loops))

    def quit(self) -> None:
        for loop in self.loops:
            loop.quit()


async def test_two_workflows_one_shown_at_a_time(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """Several workflows in the TUI (issue 27 §3): a bar with each one's state; the
    deploys, pod, problems and logs are the shown workflow's; ] and 1-9 switch; the keys
    act on the workflow shown; what the other does meanwhile is there when it is shown."""
    from tests.test_several import answering, named

    kube = Kube(api_client, namespace)
    names = ("alpha", "beta")
    directories = {name: named(tmp_path, name) for name in names}
    loops = {
        name: DevLoop(
            LoopSettings(d, render_options(namespace), context_name()), kube, lambda e: None
        )
        for name, d in directories.items()
    }
    workflows = {
        name: (loop, Session(str(directories[name]), context_name(), REAL is None, namespace))
        for name, loop in loops.items()
    }
    app = PdwatchApp(Together(list(loops.values())), workflows["alpha"][1], workflows=workflows)
    seen: dict[str, list[events.Event]] = {name: [] for name in names}
    arrived = asyncio.Event()

    def recorder(name: str) -> Callable[[events.Event], None]:
        def emit(event: events.Event) -> None:
            seen[name].append(event)
            arrived.set()
            app.emitter(name)(event)

        return emit

    for name, loop in loops.items():
        loop.emit = recorder(name)

    async def until(name: str, wanted: Callable[[events.Event], bool], since: int = 0) -> None:
        async def look() -> None:
            while not any(wanted(e) for e in seen[name][since:]):
                arrived.clear()
                await arrived.wait()

        await asyncio.wait_for(look(), 60)

    def finished(e: events.Event) -> bool:
        return isinstance(e, events.CycleFinished) and e.outcome == "ready"

    def pod_of(name: str) -> str:
        return [e.pod for e in seen[name] if isinstance(e, events.PodReady)][-1]

    async def shows(name: str, pilot: Pilot[Any]) -> None:
        """The app's turns until the shown workflow's log lines are on screen."""
        for _ in range(200):
            logs = list(app.query_one(LogView).lines_kept)
            if f"──── {pod_of(name)} ────" in logs:
                return
            await pilot.pause()
        raise AssertionError(f"{name}'s logs not shown: {logs}")

    async with app.run_test(size=(120, 40)) as pilot:
        for name in names:
            await until(name, finished)
        await shows("alpha", pilot)
        bar = text_of(app.query_one(WorkflowsBar))
        assert "1 alpha ● watching ✓" in bar and "2 beta ● watching ✓" in bar
        assert "alpha v1.0" in text_of(app.query_one(HeaderBar))
        assert pod_of("alpha") in text_of(app.query_one(PodPanel))
        assert not any(pod_of("beta")[-5:] in line for line in app.query_one(LogView).lines_kept)

        await pilot.press("right_square_bracket")
        await shows("beta", pilot)
        assert "beta v1.0" in text_of(app.query_one(HeaderBar))
        assert pod_of("beta") in text_of(app.query_one(PodPanel))
        assert not any(pod_of("alpha")[-5:] in line for line in app.query_one(LogView).lines_kept)
        await pilot.press("t")  # acts on beta, the workflow shown
        await until("beta", lambda e: isinstance(e, events.RunResult))
        for _ in range(100):
            if isinstance(app.screen, TextScreen):
                break
            await pilot.pause()
        assert isinstance(app.screen, TextScreen)
        assert json.loads(app.screen.body)["outputs"]["greet"] == {"who": "beta", "version": 1}
        await pilot.press("escape")

        mark = len(seen["alpha"])
        (directories["alpha"] / "nodes" / "greet.ts").write_text(answering("alpha", 2))
        await until("alpha", finished, mark)
        assert app.query_one(Timeline).row_count == 1  # beta's one deploy, still shown
        await pilot.press("1")
        for _ in range(200):
            if app.query_one(Timeline).row_count == 2:
                break
            await pilot.pause()
        assert app.query_one(Timeline).row_count == 2  # alpha's two, the second done meanwhile
        assert "alpha v2" in " ".join(app.query_one(LogView).lines_kept)
        await pilot.press("q")
        await pilot.pause()
    for loop in loops.values():
        assert loop.stopping.is_set()
