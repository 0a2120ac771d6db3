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


async def batches(
    root: Path,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[Batch]:
    """Debounced batches of relevant changed paths below root, until `stop` is set.

    watchfiles' own grouping only waits while the set of distinct (change, path) pairs
    grows, so 200 writes to the same 4 files would be yielded mid-burst. It is therefore
    asked for raw changes every few milliseconds, and the debounce is done here: a batch
    is released after `debounce_ms` without changes, or `max_wait_ms` after its first.
    """
    resolved = root.resolve()
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

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(pump())
    pending: set[str] = set()
    first_at = last_at = 0.0
    saved_at: float | None = None
    try:
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
                if not task.cancelled() and task.exception() is not None:
                    raise WatchFailed(str(task.exception())) from task.exception()
                return
            age = change_age(resolved, changes, min(RAW_STEP_MS, debounce_ms))
            now = loop.time() - age
            if not pending:
                first_at = now
            pending |= changes
            last_at = max(last_at, now)
            saved_at = time.time() - age  # the mtimes, as far as the watch's timing allows
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


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
