"""The main screen in its key states, as SVG snapshots (pytest-textual-snapshot).

Refresh after a deliberate change with: python3 dev.py test tests/test_tui_snapshots.py
--snapshot-update, then look at the SVGs before committing them."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests import tuiscript


async def settle(pilot: Pilot[Any]) -> None:
    await pilot.pause(0.3)  # the log buffer is flushed every 100 ms


@pytest.mark.parametrize("state", ["FIRST_DEPLOY", "READY", "INVALID", "CRASHED", "PAUSED"])
def test_main_screen(state: str, snap_compare: Any) -> None:
    app = tuiscript.scripted_app(getattr(tuiscript, state))
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle)


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    app = tuiscript.scripted_app(tuiscript.CRASHED)
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle)


def test_main_screen_light_theme(snap_compare: Any) -> None:
    app = tuiscript.scripted_app(tuiscript.CRASHED)

    async def light(pilot: Pilot[Any]) -> None:
        app.theme = "textual-light"
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=light)
