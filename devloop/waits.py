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
import queue
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
    """The event loop's default executor for pdwatch's few blocking calls (rendering a
    directory, a host name lookup): a pool of daemon threads, started as needed up to
    `workers` and reused.

    The standard ThreadPoolExecutor joins its threads at shutdown and at interpreter exit:
    one call stuck (a DNS lookup of an unreachable cluster) would hold Ctrl-C that long.
    Daemon threads end with the process, so quitting never waits for one.
    (asyncio accepts only a ThreadPoolExecutor; none of its own threads is used.)
    """

    def __init__(self, workers: int = 4) -> None:
        super().__init__(max_workers=1)
        self.closed = False
        self.workers = workers
        self.started = 0
        self.idle = 0
        self.lock = threading.Lock()
        self.work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self.closed:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                self._free()
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._free()  # free before the caller hears: its next call reuses this thread
                future.set_exception(exc)
            else:
                self._free()
                future.set_result(result)

        with self.lock:  # an idle thread takes it, else a new one while there may be more
            if self.idle:
                self.idle -= 1
            elif self.started < self.workers:
                self.started += 1
                threading.Thread(target=self._serve, daemon=True, name="pdwatch-io").start()
        self.work.put(run)
        return future

    def _serve(self) -> None:
        while True:
            self.work.get()()

    def _free(self) -> None:
        with self.lock:
            self.idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Never waits: a thread blocked in a call is abandoned, not joined."""
        self.closed = True


def install_daemon_threads(loop: asyncio.AbstractEventLoop | None = None) -> None:
    (loop or asyncio.get_running_loop()).set_default_executor(DaemonThreads())
