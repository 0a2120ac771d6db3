"""Two versions of a workflow's code compared file by file: one unified diff per file that
differs (the TUI's `d`, the deploy history's `--diff` and Enter)."""

from __future__ import annotations

import difflib


def unified(old: dict[str, str], new: dict[str, str], old_label: str, new_label: str) -> str:
    """path → text on both sides; empty when the code is the same. Labels prefix the
    paths in the headers (`previous/nodes/a.ts`, `r3/nodes/a.ts`)."""
    chunks: list[str] = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path) != new.get(path):
            chunks.extend(
                difflib.unified_diff(
                    (old.get(path) or "").splitlines(keepends=True),
                    (new.get(path) or "").splitlines(keepends=True),
                    fromfile=f"{old_label}/{path}",
                    tofile=f"{new_label}/{path}",
                )
            )
    return "".join(chunks)
