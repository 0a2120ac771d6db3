"""What the TUI shows of a workflow, folded from its events (devloop.ui.workflowview):
tables of cases, pure, in milliseconds. test_tui_pilot.py puts the same views on screen."""

from __future__ import annotations

import copy
from dataclasses import asdict
from typing import Any

import pytest

from devloop import events
from devloop.problems import Problem
from devloop.ui.workflowview import (
    MAX_LOG_LINES,
    PodView,
    Session,
    WorkflowView,
    fold,
    log_lines,
)

NOW = "12:00:00"


def view(**fields: Any) -> WorkflowView:
    return WorkflowView(Session("dir", "kind-dev", False, "default"), **fields)


def folded(start: WorkflowView, *happened: events.Event) -> WorkflowView:
    for event in happened:
        fold(start, event, NOW)
    return start


ERROR = Problem("nodes/a.ts", "missing export", 3, 1, source="  export x  ")
WARNING = Problem("workflow.yaml", "unknown key", 2, severity="warning")


@pytest.mark.parametrize(
    ("before", "event", "changes"),
    [
        (
            view(),
            events.LoopState("paused", "2 wait"),
            {"state": "paused", "state_detail": "2 wait"},
        ),
        (view(), events.Error("refused", ("why",)), {"problems": ["refused", "why"]}),
        (
            view(problems=["old"]),
            events.PreflightReport(("✓ cluster", "  ✗ permissions", "    create pods"), ok=False),
            {"problems": ["✗ permissions", "create pods"]},
        ),
        (
            view(problems=["old"]),
            events.PreflightReport(("✓ cluster", "  note: no RuntimeClass"), ok=True),
            {"problems": []},
        ),
        (
            view(problems=["old"], warnings=["w"]),
            events.RenderFailed((ERROR, WARNING)),
            {
                "problems": ["nodes/a.ts:3:1: missing export", "    export x"],
                "warnings": ["warning: workflow.yaml:2: unknown key"],
            },
        ),
        (
            view(warnings=["old"]),
            events.Rendered("h", 1, warnings=(WARNING,)),
            {"warnings": ["warning: workflow.yaml:2: unknown key"]},
        ),
        (view(warnings=["old"]), events.Rendered("h", 1), {"warnings": []}),
        (
            view(problems=["CrashLoopBackOff: it crashed", "  | boom"]),
            events.Explained("the engine exits", "read its log"),
            {
                "problems": [
                    "CrashLoopBackOff: it crashed",
                    "→ the engine exits",
                    "  to fix: read its log",
                    "  | boom",
                ]
            },
        ),
        (
            view(),
            events.Retrying("deploy", 2, 1.25, "Connection refused"),
            {"problems": ["deploy failed: Connection refused; retry 2 in 1.2 s"]},
        ),
        (
            view(problems=["p"]),
            events.CycleFinished(1, "ready"),
            {"problems": [], "outcome": "ready"},
        ),
        (
            view(problems=["p"]),
            events.CycleFinished(1, "unchanged"),
            {"problems": [], "outcome": "unchanged"},
        ),
        (
            view(problems=["p"]),
            events.CycleFinished(1, "applied"),
            {"problems": [], "outcome": "applied"},
        ),
        (view(problems=["p"]), events.CycleFinished(1, "failed"), {"outcome": "failed"}),
        (view(problems=["p"]), events.CycleFinished(1, "invalid"), {"outcome": "invalid"}),
        (view(problems=["p"]), events.CycleFinished(1, "superseded"), {"outcome": "superseded"}),
        (view(), events.Warning("w"), {}),  # the log says it; the view does not change
    ],
)
def test_what_an_event_changes(
    before: WorkflowView, event: events.Event, changes: dict[str, Any]
) -> None:
    shown = copy.deepcopy(before)  # the table's own stays as written, run after run
    expected = {**asdict(shown), **changes}
    fold(shown, event, NOW)
    assert asdict(shown) == expected


@pytest.mark.parametrize(
    ("before", "event", "after"),
    [
        # a pod of the rollout: its progress; a new pod starts its notes afresh
        (
            PodView(),
            events.PodProgress("p2", "created"),
            PodView(rolling="p2", rolling_status="created"),
        ),
        (
            PodView(rolling="p1", rolling_status="started", notes=["x"]),
            events.PodProgress("p2", "scheduled"),
            PodView(rolling="p2", rolling_status="scheduled"),
        ),
        (
            PodView(rolling="p2", rolling_status="pulled"),
            events.PodProgress("p2", "warning", "BackOff"),
            PodView(rolling="p2", rolling_status="pulled", notes=["BackOff"]),
        ),
        # the serving pod restarted: said beside it, not as the rollout's progress
        (
            PodView(serving="p1", rolling="p2", rolling_status="pulled"),
            events.PodProgress("p1", "restarted", "1 restart"),
            PodView(
                serving="p1", serving_restarts="1 restart", rolling="p2", rolling_status="pulled"
            ),
        ),
        (
            PodView(serving="p1"),
            events.PodProgress("p9", "restarted", "1 restart"),
            PodView(serving="p1"),
        ),
        # Ready: the new pod serves, the old one was replaced
        (
            PodView(serving="p1", serving_restarts="2", rolling="p2", rolling_status="started"),
            events.PodReady("p2", "rs2", 1500),
            PodView(serving="p2", serving_status=f"Ready since {NOW} (1.5 s)", replaced="p1"),
        ),
        (
            PodView(serving="p1", serving_restarts="2", replaced="p0"),
            events.PodReady("p1", "rs1", 1051),
            PodView(
                serving="p1",
                serving_status=f"Ready since {NOW} (1.1 s)",
                serving_restarts="2",
                replaced="p0",
            ),
        ),
        (
            PodView(serving="p1", rolling="p2"),
            events.RolloutFailed("", "ProgressDeadlineExceeded", "stuck"),
            PodView(serving="p1", rolling="p2", rolling_status="✗ ProgressDeadlineExceeded"),
        ),
        (
            PodView(serving="p1", rolling="p2"),
            events.RolloutFailed("p3", "CrashLoopBackOff", "crashed"),
            PodView(serving="p1", rolling="p3", rolling_status="✗ CrashLoopBackOff"),
        ),
    ],
)
def test_the_pods(before: PodView, event: events.Event, after: PodView) -> None:
    shown = view(pods=copy.deepcopy(before))
    fold(shown, event, NOW)
    assert shown.pods == after


def test_a_failed_rollout_shows_its_reason_and_last_lines() -> None:
    shown = folded(view(), events.RolloutFailed("p2", "CrashLoopBackOff", "exit 1", ("a", "b")))
    assert shown.problems == ["CrashLoopBackOff: exit 1", "  | a", "  | b"]


def test_the_session_facts() -> None:
    shown = folded(
        view(), events.Connected("k0s", "https://h", "team", True), events.Serving("http://u")
    )
    assert (shown.session.context, shown.session.namespace) == ("k0s", "team")
    assert shown.session.embedded
    assert shown.session.url == "http://u"


def test_a_cycle_gets_its_row_with_what_changed_or_why() -> None:
    shown = view()
    row = fold(shown, events.CycleStarted(1, ("nodes/a.ts", "workflow.yaml"), "change"), NOW)
    assert row is not None
    assert (row.number, row.time, row.change) == (1, NOW, "nodes/a.ts, workflow.yaml")
    assert shown.current == 1
    second = fold(shown, events.CycleStarted(2, (), "redeploy"), NOW)
    assert second is not None and second.change == "redeploy"
    assert list(shown.rows) == [1, 2]


def test_no_row_before_the_first_cycle() -> None:
    assert fold(view(), events.LoopState("watching"), NOW) is None


def test_a_finished_row_never_changes_again() -> None:
    """The defect of issue 27: a restart of the serving pod turned a finished ✓ row's
    rollout cell into "restarted 0 ms"."""
    shown = folded(
        view(),
        events.CycleStarted(1, ("nodes/a.ts",), "change"),
        events.PodProgress("p2", "started", ms=300),
        events.PodReady("p2", "rs2", 450),
        events.CycleFinished(1, "ready", 900),
    )
    finished = (shown.rows[1].rollout, shown.rows[1].result, shown.rows[1].state)
    assert finished == ("Ready 450 ms", "✓ 900 ms", "ready")
    for later in (
        events.PodProgress("p2", "restarted", "1 restart"),
        events.Error("the idle monitor failed"),
        events.RolloutFailed("p2", "CrashLoopBackOff", "x"),
    ):
        row = fold(shown, later, NOW)
        assert row is not None
        assert (row.rollout, row.result, row.state) == finished


def test_log_lines_say_when_the_pod_changes() -> None:
    shown = view()
    assert log_lines(shown, events.LogLine("hello-abc-x1y2z", "one")) == [
        "──── hello-abc-x1y2z ────",
        "[x1y2z] one",
    ]
    assert log_lines(shown, events.LogLine("hello-abc-x1y2z", "two")) == ["[x1y2z] two"]
    assert log_lines(shown, events.LogLine("hello-def-q", "three")) == [
        "──── hello-def-q ────",
        "[def-q] three",
    ]
    assert list(shown.logs)[-1] == "[def-q] three"
    assert len(shown.logs) == 5


def test_the_kept_log_is_bounded() -> None:
    shown = view()
    for n in range(MAX_LOG_LINES + 10):
        log_lines(shown, events.LogLine("p", str(n)))
    assert len(shown.logs) == MAX_LOG_LINES
    assert shown.logs[-1] == f"[p] {MAX_LOG_LINES + 9}"
