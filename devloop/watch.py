"""Which file changes start a deploy cycle, and debounced batches of them (watchfiles).

Relevant: `workflow.yaml`, `nodes/**/*.ts`, `.secrets.yaml`, `.secrets/**`,
`.pipedreamer/base-image.txt`, `.tentacular/base-image.txt`. Never: editor swap, backup and
temp files (`*.swp`, `*~`, `4913`, `.#*`, `*.tmp`, JetBrains `___jb_tmp___`), hidden files
below nodes/, `.git/`,
`node_modules/`. Batches carry paths, not event kinds: the cycle renders what is on disk
when it runs, so every way an editor saves (in place, temp-then-rename, delete-then-
create) ends up as "this file changed".

watchfiles' `step` is our debounce (a sliding window after the last event) and its
`debounce` our maximum wait, so a tool that writes continuously still deploys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import watchfiles

from devloop.codefiles import NODES_DIR, SKIPPED_DIRS
from devloop.image import IMAGE_FILES, MARKER_DIRS
from devloop.secrets import SECRETS_DIR, SECRETS_FILE
from devloop.waits import within
from devloop.workflow import WORKFLOW_FILE

IMAGE_PATHS = {p.as_posix() for p in IMAGE_FILES}
DEFAULT_DEBOUNCE_MS = 150
DEFAULT_MAX_WAIT_MS = 2000
EDITOR_TEMP = re.compile(r"(\.sw.|~|\.tmp|___jb_(tmp|old|bak)___|\.orig|\.bak)$|^4913$|^\.#")


def relevant(relative: str) -> bool:
    """Whether a change to this path (relative to the workflow directory, '/'-separated)
    can change what is deployed."""
    parts = PurePosixPath(relative).parts
    if not parts or any(p in SKIPPED_DIRS or p == ".git" for p in parts):
        return False
    name = parts[-1]
    if EDITOR_TEMP.search(name):
        return False
    if relative in (WORKFLOW_FILE, SECRETS_FILE) or relative in IMAGE_PATHS:
        return True
    if parts[0] == SECRETS_DIR:
        return len(parts) > 1 and not name.startswith(".")
    if parts[0] == NODES_DIR:
        return name.endswith(".ts") and not any(p.startswith(".") for p in parts[1:])
    return False


CODE_DIRS = (NODES_DIR, ".secrets", *(d for d in MARKER_DIRS))


def relevant_dir(relative: str) -> bool:
    """Whether a new directory here can hold relevant files: files created in it together
    with it can be missed by the watch (it is added only once the directory exists), so
    its appearance counts as a change and its files are looked for."""
    parts = PurePosixPath(relative).parts
    if not parts or parts[0] not in CODE_DIRS:
        return False
    return not any(p.startswith(".") or p in SKIPPED_DIRS for p in parts[1:])


def link_targets(root: Path) -> set[str]:
    """The files inside root that node files below nodes/ are links to: saving one changes
    the deployed code though it is not itself below nodes/."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root / NODES_DIR):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS]
        for name in filenames:
            link = os.path.join(dirpath, name)
            if name.endswith(".ts") and os.path.islink(link):
                target = _relative(os.path.realpath(link), root)
                if target is not None:
                    found.add(target)
    return found


class RelevantFilter(watchfiles.BaseFilter):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()
        self.targets = link_targets(self.root)

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        rel = _relative(path, self.root)
        if rel is None:
            return False
        if change != watchfiles.Change.modified and rel.startswith(NODES_DIR + "/"):
            self.targets = link_targets(self.root)  # a link may have come or gone
        if rel in self.targets:
            return True
        if change == watchfiles.Change.added and relevant_dir(rel) and os.path.isdir(path):
            return True
        if change == watchfiles.Change.deleted and relevant_dir(rel):
            # maybe a folder of code moved out of nodes/ or hidden: render anew
            return not EDITOR_TEMP.search(PurePosixPath(rel).name)
        return relevant(rel)


def expand(root: Path, relative: str) -> set[str]:
    """A changed path; for a new directory, the relevant files already in it."""
    full = root / relative
    if not os.path.isdir(full) or os.path.islink(full):  # neither raises, even on a loop
        return {relative}
    found = set()
    for dirpath, dirnames, filenames in os.walk(full):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS]
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if relevant(rel):
                found.add(rel)
    return found or {relative}


class WatchFailed(Exception):
    """The file watch stopped on an error; saves made since may not have been seen."""


@dataclass(frozen=True)
class Batch:
    paths: frozenset[str]  # relative, '/'-separated
    saved_at: float | None = None  # wall clock of the last save in it, as the watch saw it


RAW_STEP_MS = 10


class WatchedDirectory:
    """The directory a watch session is on, held open: while its descriptor is open its
    inode cannot be reused, so a directory deleted and created again at the same path
    (which may otherwise get the same inode number) is told apart from it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.fd: int | None = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            self.fd = None

    def state(self) -> str:
        """ "same", "gone" (nothing at the path) or "replaced" (another directory there)."""
        try:
            now = os.stat(self.root)
        except OSError:
            return "gone"
        if self.fd is None:
            return "replaced"
        held = os.fstat(self.fd)
        if held.st_nlink == 0 or (held.st_dev, held.st_ino) != (now.st_dev, now.st_ino):
            return "replaced"
        return "same"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class WatchHub:
    """One file watcher for every workflow of a session (issue 27: one set of watches).

    watchfiles' Rust watcher wakes every `step` and takes the GIL to look for changes;
    one per workflow made five workflows idle at 1.9 % of a core where one watcher for all
    costs what one workflow does. The roots are watched from the start (the session knows
    them), so subscribing costs nothing; a root that comes later, or comes back as another
    directory (replaced, moved back), restarts the watcher, and the other subscribers are
    told to look at their files again (a save in the restart's instant is not lost).
    """

    def __init__(self, roots: list[Path], debounce_ms: int, max_wait_ms: int) -> None:
        self.wanted = {root.resolve() for root in roots}
        self.step_ms = min(RAW_STEP_MS, debounce_ms)
        self.debounce_ms = max(max_wait_ms, debounce_ms)
        self.queues: dict[Path, asyncio.Queue[set[str] | None]] = {}
        self.watched: dict[Path, WatchedDirectory] = {}  # the roots watched, held open
        self.task: asyncio.Task[None] | None = None
        self.stop = asyncio.Event()
        self.error: BaseException | None = None  # why the watcher stopped, until restarted
        self.watching = asyncio.Event()  # the current watcher has reported (or ticked)

    @contextlib.asynccontextmanager
    async def subscription(self, root: Path) -> AsyncIterator[asyncio.Queue[set[str] | None]]:
        """Raw relevant changes below `root` (None: the watcher failed), while inside; the
        watcher is watching `root` when it is entered."""
        queue: asyncio.Queue[set[str] | None] = asyncio.Queue()
        self.wanted.add(root)
        self.queues[root] = queue  # before the watcher's first report, which may be a save
        await self._ensure(but=root)
        try:
            yield queue
        finally:
            if self.queues.get(root) is queue:
                del self.queues[root]

    async def close(self) -> None:
        await self._stop()
        for held in self.watched.values():
            held.close()
        self.watched = {}

    def _current(self) -> bool:
        """Whether the watcher watches every wanted root that exists, as it is now."""
        for root in self.wanted:
            held = self.watched.get(root)
            if held is None:
                if root.is_dir():
                    return False  # come since
            elif held.state() != "same":
                return False  # gone or replaced: its watch is on what was there
        return True

    def _hold(self) -> dict[Path, WatchedDirectory]:
        for held in self.watched.values():
            held.close()
        return {root: WatchedDirectory(root) for root in self.wanted if root.is_dir()}

    async def _ensure(self, but: Path) -> None:
        """Watching what is wanted as it is now, or started anew; then the others are told
        to look again, once the new watcher watches (the instant between was unwatched)."""
        if self.task is not None and not self.task.done() and self._current():
            await self._live()
            return
        restarted = self.task is not None
        await self._stop()
        self.watched, self.stop, self.error = self._hold(), asyncio.Event(), None
        self.watching = asyncio.Event()
        if not self.watched:
            return
        roots = sorted(self.watched)
        self.task = asyncio.create_task(self._pump(roots, self.stop, self.watching))
        await self._live()
        if restarted:
            for root, queue in self.queues.items():
                if root != but:
                    queue.put_nowait(set())  # look again

    async def _live(self) -> None:
        """Until the watcher watches (its first report or quiet tick), or has failed."""
        if self.task is None:
            return
        live = asyncio.create_task(self.watching.wait())
        await asyncio.wait({live, self.task}, return_when=asyncio.FIRST_COMPLETED)
        live.cancel()

    async def _stop(self) -> None:
        if self.task is not None:
            self.stop.set()
            task, self.task = self.task, None
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _pump(self, roots: list[Path], stop: asyncio.Event, live: asyncio.Event) -> None:
        filters = {root: RelevantFilter(root) for root in roots}

        def wanted(change: watchfiles.Change, path: str) -> bool:
            return any(f(change, path) for f in filters.values())

        try:
            async for changes in watchfiles.awatch(
                *roots,
                watch_filter=wanted,
                step=self.step_ms,
                debounce=self.debounce_ms,
                stop_event=stop,
                rust_timeout=500,
                yield_on_timeout=True,  # the first quiet tick says it watches
            ):
                live.set()
                for root in roots:
                    paths = {_relative(path, root) for _, path in changes}
                    mine = {p for path in paths if path for p in expand(root, path)}
                    queue = self.queues.get(root)
                    if mine and queue is not None:
                        queue.put_nowait(mine)
        except Exception as exc:
            self.error = exc
            for queue in self.queues.values():
                queue.put_nowait(None)  # each says the watch stopped and subscribes anew


async def batches(
    root: Path,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
    stop: asyncio.Event | None = None,
    hub: WatchHub | None = None,
) -> AsyncIterator[Batch]:
    """Debounced batches of relevant changed paths below root, until `stop` is set.

    watchfiles' own grouping only waits while the set of distinct (change, path) pairs
    grows, so 200 writes to the same 4 files would be yielded mid-burst. It is therefore
    asked for raw changes every few milliseconds, and the debounce is done here: a batch
    is released after `debounce_ms` without changes, or `max_wait_ms` after its first.
    With a `hub` (several workflows), the raw changes come from the session's one watcher;
    an empty set from it asks for a look at the files (an empty batch).
    """
    resolved = root.resolve()
    if hub is None:
        raw: asyncio.Queue[set[str] | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for changes in watchfiles.awatch(
                    resolved,
                    watch_filter=RelevantFilter(resolved),
                    step=min(RAW_STEP_MS, debounce_ms),
                    debounce=max(max_wait_ms, debounce_ms),
                    stop_event=stop,
                    rust_timeout=500,
                ):
                    paths = {_relative(path, resolved) for _, path in changes}
                    await raw.put({p for path in paths if path for p in expand(resolved, path)})
            finally:
                await raw.put(None)

        task = asyncio.create_task(pump())
        try:
            async for batch in debounced(resolved, raw, debounce_ms, max_wait_ms, task):
                yield batch
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return
    async with hub.subscription(resolved) as queue:
        stopped = asyncio.create_task((stop or asyncio.Event()).wait())
        stopped.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            async for batch in debounced(resolved, queue, debounce_ms, max_wait_ms, None):
                yield batch
        finally:
            stopped.cancel()
        if hub.error is not None and not (stop and stop.is_set()):
            raise WatchFailed(str(hub.error)) from hub.error


async def debounced(
    resolved: Path,
    raw: asyncio.Queue[set[str] | None],
    debounce_ms: int,
    max_wait_ms: int,
    task: asyncio.Task[None] | None,
) -> AsyncIterator[Batch]:
    """Raw changes into batches (see `batches`); None ends them (`task` failed: raised)."""
    loop = asyncio.get_running_loop()
    pending: set[str] = set()
    first_at = last_at = 0.0
    saved_at: float | None = None
    while True:
        timeout = None
        if pending:
            due = min(last_at + debounce_ms / 1000, first_at + max_wait_ms / 1000)
            timeout = max(0.0, due - loop.time())
        try:
            changes = await within(raw.get(), timeout)
        except TimeoutError:
            yield Batch(frozenset(pending), saved_at)
            pending = set()
            continue
        if changes is None:
            if pending:
                yield Batch(frozenset(pending), saved_at)
            if task is not None and not task.cancelled() and task.exception() is not None:
                raise WatchFailed(str(task.exception())) from task.exception()
            return
        if not changes:  # a look at the files asked for: at once
            yield Batch(frozenset(pending), saved_at)
            pending = set()
            continue
        age = change_age(resolved, changes, min(RAW_STEP_MS, debounce_ms))
        now = loop.time() - age
        if not pending:
            first_at = now
        pending |= changes
        last_at = max(last_at, now)
        saved_at = time.time() - age  # the mtimes, as far as the watch's timing allows


def change_age(root: Path, changes: set[str], step_ms: int, sample: int = 20) -> float:
    """How long ago (seconds) the saves just reported happened.

    watchfiles reports a change after one to two `step`s of quiet, so the debounce, meant
    to run from the save, would start late by that much. The changed files' mtimes say
    when they were written; the result stays within what watchfiles' timing allows (a
    file system with coarse mtimes, or one file of many, cannot stretch it), and is one
    step when no changed file is there to ask (deletions)."""
    bound = 2 * step_ms / 1000 + 0.005
    latest = None
    for rel in sorted(changes)[:sample]:
        try:
            mtime = (root / rel).stat().st_mtime
        except OSError:
            continue
        latest = mtime if latest is None else max(latest, mtime)
    if latest is None:
        return step_ms / 1000
    return min(max(time.time() - latest, 0.0), bound)


def _relative(path: str, root: Path) -> str | None:
    """`path` relative to the (resolved) root, '/'-separated, or None when outside it. The
    last component is never resolved: a change to a link is the link's (`nodes/b.ts`), not
    its target's, and a link loop must not raise."""
    parent, name = os.path.split(path)
    for base in (parent, os.path.realpath(parent)):  # realpath never raises
        try:
            return (Path(base) / name).relative_to(root).as_posix()
        except ValueError:
            continue
    return None
