"""The deploys table's rows, decided from the loop's events (devloop.ui.timeline)."""

from __future__ import annotations

import pytest

from devloop import events
from devloop.problems import Problem
from devloop.ui.timeline import CycleRow, update


def finished_row() -> CycleRow:
    row = CycleRow(3, "12:00:00", "nodes/greet.ts")
    for event in (
        events.Rendered("h", 10, ms=4),
        events.Applied(("Deployment/hello",), 20),
        events.RestartTriggered("hello", "template"),
        events.PodReady("hello-1", "hello-rs", 640.0, 812.0),
        events.CycleFinished(3, "ready", 812.0),
    ):
        row = update(row, event)
    return row


def test_a_cycle_s_events_fill_its_row() -> None:
    row = finished_row()
    assert (row.render, row.apply, row.rollout, row.result, row.state) == (
        "4 ms",
        "20 ms",
        "Ready 640 ms",
        "✓ 812 ms",
        "ready",
    )


@pytest.mark.parametrize(
    "later",
    [
        events.PodProgress("hello-1", "restarted", "1", 0),  # the serving pod restarted
        events.Error("watch of pods dropped"),
        events.Retrying("follow", 1, 0.5, "timeout"),
        events.RolloutFailed("hello-1", "CrashLoopBackOff", "back-off"),
    ],
)
def test_a_finished_row_is_never_rewritten(later: events.Event) -> None:
    """A restart of the serving pod after the cycle turned its ✓ row's rollout cell into
    "restarted 0 ms" (issue 27)."""
    row = finished_row()
    before = (row.rollout, row.result, row.state)
    assert (update(row, later).rollout, row.result, row.state) == before


def row_after(*happened: events.Event) -> tuple[str, str, str, str, str, bool]:
    row = CycleRow(1, "12:00:00", "x")
    for event in happened:
        row = update(row, event)
    return (row.render, row.apply, row.rollout, row.result, row.state, row.finished)


def problem(severity: str) -> Problem:
    return Problem("workflow.yaml", "m", 1, 1, severity)


@pytest.mark.parametrize(
    ("happened", "shown"),
    [
        ((), ("", "", "…", "running", "running", False)),
        ((events.Rendered("h", 1, ms=999.4),), ("999 ms", "", "…", "running", "running", False)),
        ((events.Rendered("h", 1, ms=1000),), ("1.0 s", "", "…", "running", "running", False)),
        ((events.Applied((), 1250),), ("", "1.2 s", "…", "running", "running", False)),
        (
            (events.RestartTriggered("d", "template"),),
            ("", "", "template", "running", "running", False),
        ),
        (
            (events.RestartTriggered("d", "restartedAt"),),
            ("", "", "restart", "running", "running", False),
        ),
        (
            (events.PodProgress("p", "scheduled", "", 12),),
            ("", "", "scheduled 12 ms", "running", "running", False),
        ),
        (  # a warning is a note of the pod panel, not the rollout's progress
            (events.PodProgress("p", "started", "", 5), events.PodProgress("p", "warning", "w", 9)),
            ("", "", "started 5 ms", "running", "running", False),
        ),
        (
            (events.PodReady("p", "rs", 2500),),
            ("", "", "Ready 2.5 s", "running", "running", False),
        ),
        (
            (events.RolloutFailed("p", "CrashLoopBackOff", "m"),),
            ("", "", "…", "✗ CrashLoopBackOff", "failed", False),
        ),
        (  # errors are counted, warnings and notes not (as the header and --render count)
            (events.RenderFailed((problem("error"), problem("warning"), problem("error"))),),
            ("", "", "—", "✗ 2 problem(s)", "invalid", False),
        ),
        ((events.Unchanged("h"),), ("", "", "—", "unchanged", "unchanged", False)),
        (
            (events.Retrying("apply", 3, 1.0, "e"),),
            ("", "", "…", "retry 3", "running", False),
        ),
        (
            (events.Error("x" * 50),),
            ("", "", "…", "x" * 40, "failed", False),
        ),
        (
            (events.CycleFinished(1, "ready", 1500.0),),
            ("", "", "…", "✓ 1.5 s", "ready", True),
        ),
        (
            (events.CycleFinished(1, "ready"),),
            ("", "", "…", "✓ Ready", "ready", True),
        ),
        (
            (events.CycleFinished(1, "applied"),),
            ("", "", "—", "applied", "applied", True),
        ),
        (
            (events.CycleFinished(1, "superseded"),),
            ("", "", "…", "superseded", "superseded", True),
        ),
        (  # the reason stays: the outcome only closes the row
            (events.RolloutFailed("p", "ErrImagePull", "m"), events.CycleFinished(1, "failed")),
            ("", "", "…", "✗ ErrImagePull", "failed", True),
        ),
        (
            (events.Unchanged("h"), events.CycleFinished(1, "unchanged")),
            ("", "", "—", "unchanged", "unchanged", True),
        ),
        (  # nothing after the end changes the row
            (events.CycleFinished(1, "ready", 10.0), events.Rendered("h", 1, ms=3)),
            ("", "", "…", "✓ 10 ms", "ready", True),
        ),
    ],
)
def test_each_event_s_mark_on_the_row(
    happened: tuple[events.Event, ...], shown: tuple[str, str, str, str, str, bool]
) -> None:
    assert row_after(*happened) == shown
