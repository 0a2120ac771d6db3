"""One timeline row per deploy cycle, built from the loop's events (pure, no widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from devloop import events


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


@dataclass
class CycleRow:
    number: int
    time: str
    change: str
    render: str = ""
    apply: str = ""
    rollout: str = "…"
    result: str = "running"  # "✓ <time from the save to Ready>" or "✗ <reason>"
    state: str = "running"  # running, ready, failed, invalid, unchanged, applied
    finished: bool = False  # its CycleFinished came: the row is history, never rewritten


def update(row: CycleRow, event: events.Event) -> CycleRow:
    """The row after one more event of its cycle. Once the cycle has finished, events
    that come after it (the serving pod restarted, the monitor's errors) belong to no
    cycle, and the row says what its cycle did."""
    if row.finished:
        return row
    match event:
        case events.Rendered(ms=took):
            row.render = ms(took)
        case events.Applied(ms=took):
            row.apply = ms(took)
        case events.RestartTriggered(via=via):
            row.rollout = "template" if via == "template" else "restart"
        case events.PodProgress(step=step, ms=took) if step != "warning":
            row.rollout = f"{step} {ms(took)}"
        case events.PodReady(ms=took):
            row.rollout = f"Ready {ms(took)}"
        case events.RolloutFailed(reason=reason):
            row.result, row.state = f"✗ {reason}", "failed"
        case events.RenderFailed(problems=problems):
            errors = sum(p.is_error for p in problems)  # as the header and --render count
            row.result, row.state = f"✗ {errors} problem(s)", "invalid"
            row.rollout = "—"
        case events.Unchanged():
            row.result, row.state, row.rollout = "unchanged", "unchanged", "—"
        case events.Retrying(attempt=attempt):
            row.result = f"retry {attempt}"
        case events.Error(message=message):
            row.result, row.state = message[:40], "failed"
        case events.CycleFinished(outcome=outcome, edit_to_ready_ms=edit):
            row.state, row.finished = outcome, True
            if outcome == "ready":
                row.result = f"✓ {ms(edit)}" if edit is not None else "✓ Ready"
            elif outcome == "applied":
                row.result, row.rollout = "applied", "—"
            elif outcome == "superseded":
                row.result = "superseded"
    return row
