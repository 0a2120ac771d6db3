"""Waits that a quit can always end, and threads that never hold up the exit.

On Python 3.11, `asyncio.wait_for` swallows a cancellation that arrives after its inner
awaitable has finished (CPython gh-86296, fixed in 3.12): a task cancelled in that moment
goes on running, so a daemon that quits by cancelling its worker stayed alive for good.
`asyncio.wait` and `asyncio.timeout` propagate cancellation on every version; these
helpers are built on them, and nothing in pdwatch uses `wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


async def event_or_timeout(event: asyncio.Event, seconds: float | None) -> bool:
    """Wait until `event` is set (True) or `seconds` have passed (False)."""
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
    return event.is_set()


async def within(awaitable: Awaitable[T], seconds: float | None) -> T:
    """`awaitable`'s result, or TimeoutError after `seconds`; cancellable at any moment."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def finish(task: asyncio.Task[Any], seconds: float) -> None:
    """Cancel a task and give it `seconds` to end; whatever it raises is its own business."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait({task}, timeout=seconds)


class DaemonThreads(ThreadPoolExecutor):
    """The event loop's default executor for pdwatch's blocking calls (the Kubernetes
    client, file reads): one daemon thread per call.

    The standard ThreadPoolExecutor joins its threads at shutdown and at interpreter exit:
    one call stuck on an unreachable API server (up to its 15 s timeout) held Ctrl-C that
    long. Daemon threads end with the process, so quitting never waits for the network.
    A thread costs tens of microseconds to start, against milliseconds for the calls.
    (asyncio accepts only a ThreadPoolExecutor; none of its pooled threads is used.)
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self.closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: Future[T] = Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)

        threading.Thread(target=run, daemon=True, name="pdwatch-io").start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Never waits: a thread blocked on the network is abandoned, not joined."""
        self.closed = True


def install_daemon_threads(loop: asyncio.AbstractEventLoop | None = None) -> None:
    (loop or asyncio.get_running_loop()).set_default_executor(DaemonThreads())
