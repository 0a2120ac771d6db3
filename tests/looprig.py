"""A DevLoop running against the cluster under test (tests/target.py), with its events
captured so tests can wait on them (never on sleeps)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from devloop import events
from devloop.kube.client import Kube
from devloop.loop import DevLoop, LoopSettings
from tests.target import context_name, patience, render_options

EXAMPLES = Path(__file__).parent.parent / "examples"
E = TypeVar("E", bound=events.Event)


class Rig:
    def __init__(self, directory: Path, kube: Kube, **settings: Any) -> None:
        self.directory = directory
        self.kube = kube
        self.events: list[events.Event] = []
        self.changed = asyncio.Condition()
        self.loop = DevLoop(
            LoopSettings(
                directory, render_options(kube.namespace), context=context_name(), **settings
            ),
            kube,
            self.emit,
        )

    def emit(self, event: events.Event) -> None:
        self.events.append(event)

        async def notify() -> None:
            async with self.changed:
                self.changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        return [e for e in self.events[since:] if isinstance(e, kind)]

    async def wait_for(
        self,
        kind: type[E],
        predicate: Callable[[E], bool] = lambda e: True,
        since: int = 0,
        timeout: float = 20,
    ) -> E:
        """The first event of `kind` matching `predicate` at or after index `since`."""

        async def find() -> E:
            async with self.changed:
                while True:
                    for event in self.events[since:]:
                        if isinstance(event, kind) and predicate(event):
                            return event
                    await self.changed.wait()

        try:
            return await asyncio.wait_for(find(), patience(timeout))
        except TimeoutError:  # what did happen, for the failure's report
            seen = "\n".join(repr(e)[:300] for e in self.events[since:][-40:]) or "(none)"
            raise AssertionError(
                f"no {kind.__name__} within {patience(timeout):g} s; the events since:\n{seen}"
            ) from None

    async def cycle_done(self, since: int = 0, timeout: float = 20) -> events.CycleFinished:
        return await self.wait_for(events.CycleFinished, since=since, timeout=timeout)

    def mark(self) -> int:
        return len(self.events)


async def cycle_of(rig: Rig, mark: int, content_hash: str) -> events.CycleFinished:
    """The end of the first cycle after `mark` that rendered `content_hash` (a cycle
    started before a save may still end after it, with the older content)."""

    def rendered_it(done: events.CycleFinished) -> bool:
        started = next(
            i
            for i, e in enumerate(rig.events)
            if isinstance(e, events.CycleStarted) and e.cycle == done.cycle
        )
        ended = rig.events.index(done, started)
        return any(
            isinstance(e, events.Rendered) and e.content_hash == content_hash
            for e in rig.events[started:ended]
        )

    return await rig.wait_for(events.CycleFinished, rendered_it, since=mark, timeout=30)


@contextlib.asynccontextmanager
async def running_loop(
    tmp_path: Path, kube: Kube, example: str = "hello", **settings: Any
) -> AsyncIterator[Rig]:
    directory = tmp_path / example
    shutil.copytree(EXAMPLES / example, directory)
    rig = Rig(directory, kube, **settings)
    task = asyncio.create_task(rig.loop.run())
    try:
        first = await rig.cycle_done()
        assert first.outcome == "ready", rig.events
        yield rig
    finally:
        rig.loop.quit()
        await asyncio.wait_for(task, 10)
