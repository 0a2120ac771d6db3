"""TypeScript that does not parse is found before it is deployed.

Deno refuses to load a module with a syntax error, so the engine would crash at start and
the new pod never become Ready. tree-sitter's TypeScript grammar parses every code file
(a few milliseconds for a workflow) and reports the first error with its position; it
accepts the real node files written for the reference engine (no false positives). Only
syntax is checked: types are the engine's business.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from devloop.codefiles import CodeFile
from devloop.problems import Problem, source_line

SHOWN_TOKEN = 40


@functools.cache
def _parser() -> Any:
    import tree_sitter_typescript
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_typescript.language_typescript()))


def _first_error(node: Any) -> Any | None:
    """The first ERROR or missing node, in source order, without recursion."""
    stack = [node]
    found = None
    while stack:
        current = stack.pop()
        if current.type == "ERROR" or current.is_missing:
            if found is None or current.start_byte < found.start_byte:
                found = current
            continue
        if current.has_error:
            stack.extend(current.children)
    return found


def syntax_problem(file: CodeFile, shown: str) -> Problem | None:
    """Cached by content: a save usually changes one file, and the others are not parsed
    again (a few hundred microseconds each, on the edit-to-deploy path)."""
    key = (shown, file.text)
    if key in _checked:
        return _checked[key]
    found = _syntax_problem(file, shown)
    if len(_checked) >= CACHE_ENTRIES:
        _checked.clear()
    _checked[key] = found
    return found


CACHE_ENTRIES = 2048
_checked: dict[tuple[str, str], Problem | None] = {}


# tree-sitter holds the GIL while it parses a bytestring: a 600 KB file froze the TUI's
# event loop (render runs in a thread) for 200 ms. Read in chunks, the parser calls back
# into Python between them, and the GIL changes hands there.
CHUNK_BYTES = 16 * 1024


def parse(data: bytes) -> Any:
    if len(data) <= CHUNK_BYTES:
        return _parser().parse(data)

    def read(offset: int, _point: tuple[int, int]) -> bytes:
        return data[offset : offset + CHUNK_BYTES]

    return _parser().parse(read)


def _syntax_problem(file: CodeFile, shown: str) -> Problem | None:
    data = file.text.encode("utf-8")
    tree = parse(data)
    if not tree.root_node.has_error:
        return None
    error = _first_error(tree.root_node)
    if error is None:
        return Problem(shown, "TypeScript syntax error")
    row, byte_column = error.start_point
    line_bytes = data.split(b"\n")[row] if row < data.count(b"\n") + 1 else b""
    column = len(line_bytes[:byte_column].decode("utf-8", "replace")) + 1
    if error.is_missing:
        what = f"missing {error.type!r}"
    else:
        first = error.children[0] if error.children else error
        token = data[first.start_byte : first.end_byte].decode("utf-8", "replace")
        token = token.split("\n", 1)[0][:SHOWN_TOKEN]
        what = f"unexpected {token!r}" if token.strip() else "unexpected input"
    return Problem(
        shown,
        f"TypeScript syntax error: {what} (the engine could not load this module)",
        row + 1,
        column,
        source=source_line(file.text, row + 1),
    )


def syntax_problems(files: Iterable[CodeFile], display_root: str) -> list[Problem]:
    out = []
    for file in files:
        if not file.path.endswith(".ts"):
            continue
        problem = syntax_problem(file, os.path.join(display_root, file.path))
        if problem is not None:
            out.append(problem)
    return out
