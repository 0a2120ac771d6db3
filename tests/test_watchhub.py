"""The session's one file watcher (devloop.watch.WatchHub): several workflows' changes from
one Rust watcher, each workflow's own; a root that comes later or comes back as another
directory restarts it, and the others are asked to look again. Real files, real inotify."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from devloop.watch import Batch, WatchHub, batches

WAIT_S = 10  # a bound on a watch that never reports, not a performance figure


def workflow(root: Path) -> Path:
    (root / "nodes").mkdir(parents=True)
    (root / "workflow.yaml").write_text("name: w\n")
    return root


class Subscriber:
    """One workflow's batches, collected as they come."""

    def __init__(self, root: Path, hub: WatchHub) -> None:
        self.got: asyncio.Queue[Batch] = asyncio.Queue()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self._run(batches(root, 20, 500, self.stop, hub)))

    async def _run(self, source: AsyncIterator[Batch]) -> None:
        async for batch in source:
            self.got.put_nowait(batch)

    async def next(self) -> Batch:
        return await asyncio.wait_for(self.got.get(), WAIT_S)

    async def end(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, WAIT_S)


async def until_subscribed(hub: WatchHub, *roots: Path) -> None:
    """Until the subscribers are in and the watcher watches (its first tick)."""
    while not all(r.resolve() in hub.queues for r in roots):
        await asyncio.sleep(0)  # the subscribers' tasks' first steps
    await asyncio.wait_for(hub.watching.wait(), WAIT_S)


async def test_each_workflow_gets_its_own_changes_from_one_watcher(tmp_path: Path) -> None:
    a, b = workflow(tmp_path / "a"), workflow(tmp_path / "b")
    hub = WatchHub([a, b], 20, 500)
    first, second = Subscriber(a, hub), Subscriber(b, hub)
    try:
        await until_subscribed(hub, a, b)
        watcher = hub.task
        (a / "nodes" / "x.ts").write_text("export default 1;\n")
        assert (await first.next()).paths == {"nodes/x.ts"}
        (b / "workflow.yaml").write_text("name: b\n")
        assert (await second.next()).paths == {"workflow.yaml"}
        assert first.got.empty()
        assert hub.task is watcher  # one watcher throughout
    finally:
        await first.end()
        await second.end()
        await hub.close()


async def test_a_root_that_comes_later_restarts_it_and_the_others_look_again(
    tmp_path: Path,
) -> None:
    a, later = workflow(tmp_path / "a"), tmp_path / "later"
    hub = WatchHub([a, later], 20, 500)  # `later` does not exist yet
    first = Subscriber(a, hub)
    try:
        await until_subscribed(hub, a)
        workflow(later)
        second = Subscriber(later, hub)
        assert (await first.next()).paths == set()  # look again: the restart's instant
        await until_subscribed(hub, later)
        (later / "nodes" / "y.ts").write_text("export default 2;\n")
        assert (await second.next()).paths == {"nodes/y.ts"}
        # replaced by another directory of the same name: subscribing again restarts it
        await second.end()
        shutil.rmtree(later)
        workflow(later)
        second = Subscriber(later, hub)
        assert (await first.next()).paths == set()
        await until_subscribed(hub, later)
        (later / "nodes" / "z.ts").write_text("export default 3;\n")
        assert (await second.next()).paths == {"nodes/z.ts"}
        await second.end()
    finally:
        await first.end()
        await hub.close()
