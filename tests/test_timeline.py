"""The deploys table's rows, decided from the loop's events (devloop.ui.timeline)."""

from __future__ import annotations

import pytest

from devloop import events
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
