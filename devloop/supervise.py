"""Background tasks that cannot vanish (issue 27 §5).

A task of the loop (the worker, the file watch, the history recorder, the idle monitor)
that raised used to end without a word: the worker's death left pdwatch watching and
deploying nothing. `supervised` runs one: a failure is said (an Error event naming the
task), its traceback goes to the debug log (`--log-file`), and the task starts again
after a pause that doubles up to a bound, so the session carries on and a failure that
repeats is not a hot loop. Cancellation (quit) ends it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from devloop import events

LOG = logging.getLogger("pdwatch")
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 30.0


def where_the_traceback_is() -> str:
    files = [
        h.baseFilename
        for h in logging.getLogger("pdwatch").handlers
        if isinstance(h, logging.FileHandler)
    ]
    return f"the traceback is in {files[0]}" if files else "--log-file FILE keeps the traceback"


def report(what: str, exc: BaseException, emit: Callable[[events.Event], None], after: str) -> None:
    """Say an unexpected failure, and keep its traceback in the debug log."""
    LOG.error("%s failed", what, exc_info=exc)
    emit(
        events.Error(
            f"{what} failed unexpectedly: {type(exc).__name__}: {str(exc)[:300]}",
            (after, where_the_traceback_is()),
        )
    )


async def supervised(
    what: str,
    run: Callable[[], Coroutine[Any, Any, None]],
    emit: Callable[[events.Event], None],
    stopping: asyncio.Event,
    first_pause_s: float = FIRST_PAUSE_S,
) -> None:
    """`run()` until it returns or the session stops; started again after a failure."""
    pause = first_pause_s
    while not stopping.is_set():
        try:
            await run()
            return
        except Exception as exc:
            report(what, exc, emit, f"{what} starts again in {pause:g} s")
        with contextlib.suppress(TimeoutError):  # the pause, cut short by quit
            await asyncio.wait_for(stopping.wait(), pause)
        pause = min(pause * 2, MAX_PAUSE_S)


def configure_log_file(path: str) -> None:
    """`--log-file`: pdwatch's debug log (tracebacks of unexpected failures, and what
    led to them), appended to."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG)
    LOG.propagate = False
