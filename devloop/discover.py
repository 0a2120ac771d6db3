"""Which directories a command line names as workflows (`pdwatch DIR [DIR…]`, `pdwatch PARENT`).

A directory with a `workflow.yaml` is a workflow; any other directory stands for every
workflow below it (the catalog's layout: `workflows/<name>/workflow.yaml`, families of
digests side by side). Below a workflow, nothing more is looked for (its `nodes/` hold
code), and hidden directories, `node_modules` and symbolic links are not entered, so a
repository's `.git` or a loop of links costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

WORKFLOW_FILE = "workflow.yaml"
SKIPPED = frozenset({"node_modules", "__pycache__"})
MAX_DEPTH = 4  # PARENT/a/b/c/workflow.yaml at the deepest


@dataclass(frozen=True)
class NoWorkflows:
    """A usage error, said as is."""

    message: str


def is_workflow(directory: Path) -> bool:
    """A directory that cannot be read is not known to be one (rendering it says why)."""
    try:
        return (directory / WORKFLOW_FILE).is_file()
    except OSError:
        return False


def below(parent: Path) -> list[Path]:
    """The workflow directories under `parent`, sorted, each once."""
    found: list[Path] = []

    def walk(directory: Path, depth: int) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIPPED:
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if is_workflow(path):
                found.append(path)
            elif depth < MAX_DEPTH:
                walk(path, depth + 1)

    walk(parent, 1)
    return found


def workflow_dirs(given: list[Path]) -> list[Path] | NoWorkflows:
    """Each DIR as given when it is a workflow, else the workflows below it, else itself;
    a name that is not a directory is the error."""
    out: list[Path] = []
    for path in given:
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError as exc:
            return NoWorkflows(f"{path} cannot be read ({exc.strerror}); give a workflow directory")
        if not is_dir:
            what = "does not exist" if not exists else "is not a directory"
            return NoWorkflows(f"{path} {what}; give a workflow directory")
        # neither a workflow nor a parent of one: a workflow still to be written (the
        # loop says its workflow.yaml is missing, and deploys once it is there)
        found = [path] if is_workflow(path) else below(path) or [path]
        for directory in found:
            if directory.resolve() not in {d.resolve() for d in out}:
                out.append(directory)
    return out


def labels(placed: list[tuple[Path, str]]) -> list[str]:
    """What a session calls each of its workflows (the TUI's views, plain output's
    prefixes, the JSON's `workflow`): its name, and where two share a name (allowed in two
    namespaces) the name with its directory, as far up as tells them apart."""
    counts: dict[str, int] = {}
    for _, name in placed:
        counts[name] = counts.get(name, 0) + 1
    out = []
    for directory, name in placed:
        if counts[name] == 1:
            out.append(name)
            continue
        others = [d.resolve() for d, n in placed if n == name and d != directory]
        parts = directory.resolve().parts
        depth = 1
        while depth < len(parts) and any(o.parts[-depth:] == parts[-depth:] for o in others):
            depth += 1
        out.append(f"{name} ({'/'.join(parts[-depth:])})")
    return out
