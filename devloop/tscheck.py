"""TypeScript that does not parse is found before it is deployed.

Deno refuses to load a module with a syntax error, so the engine would crash at start and
the new pod never become Ready. tree-sitter's TypeScript grammar parses every code file
(a few milliseconds for a workflow) and reports the first error with its position; it
accepts the real node files written for the reference engine (no false positives). Only
syntax is checked: types are the engine's business. A node's own file (one `nodes:`
names, not a helper it imports) must also have a default export that can be a function:
the engine refuses to start without one ("must export a default async function"). And a
relative import must name a file that is deployed (the engine would stop at start with
"Module not found").

A file over LARGE_CHARS characters is parsed in a worker process. In this one, tree-sitter holds the
GIL for the whole parse of a bytestring (a 600 KB file froze the TUI for 200 ms), and its
read-callback form, which lets the GIL go between chunks, leaks every chunk it is given
(tree-sitter 0.26.1: 100 parses of 1 MB took the process from 18 to 210 MB).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import difflib
import functools
import hashlib
import multiprocessing
import os
import posixpath
import signal
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
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


def syntax_problem(file: CodeFile, shown: str, node: bool = False) -> Problem | None:
    """Cached by content: a save usually changes one file, and the others are not parsed
    again (a few hundred microseconds each, on the edit-to-deploy path). The cache keeps a
    digest of each text, never the text: 2,048 entries of a large file would be gigabytes.
    `node`: the file is a node's own, whose default export the engine runs."""
    digest = hashlib.blake2b(file.text.encode("utf-8", "surrogatepass"), digest_size=16)
    key = (shown, node, digest.digest())
    if key in _checked:
        return _checked[key]
    if len(file.text) > LARGE_CHARS:
        found = _in_worker(file, shown, node)
    else:
        found = _syntax_problem(file, shown, node, digest.digest())
    if len(_checked) >= CACHE_ENTRIES:
        _checked.clear()
    _checked[key] = found
    return found


CACHE_ENTRIES = 2048
_checked: dict[tuple[str, bool, bytes], Problem | None] = {}

LARGE_CHARS = 16 * 1024
_pool: list[ProcessPoolExecutor] = []


def _in_worker(file: CodeFile, shown: str, node: bool) -> Problem | None:
    """The check in the worker process (started on first use, one for the session); here
    when it cannot run there."""
    try:
        if not _pool:
            context = multiprocessing.get_context("spawn")  # threads run here: never fork
            _pool.append(ProcessPoolExecutor(1, context, _die_with_parent, (os.getpid(),)))
            atexit.register(_pool[0].shutdown, cancel_futures=True)
        return _pool[0].submit(_syntax_problem, file, shown, node).result()
    except (BrokenProcessPool, OSError, RuntimeError):
        _pool.clear()  # the next large file starts another
        return _syntax_problem(file, shown, node)


def _die_with_parent(parent: int) -> None:
    """The worker never outlives pdwatch, even one killed (SIGKILL, the quit watchdog's
    os._exit): Linux ends it when its parent goes."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent was gone before prctl
        os._exit(0)


PR_SET_PDEATHSIG = 1


def parse(data: bytes) -> Any:
    return _parser().parse(data)


def _syntax_problem(
    file: CodeFile, shown: str, node: bool = False, digest: bytes = b""
) -> Problem | None:
    """The check of one file, in this process or the worker. Here (`digest` given), the
    parse also yields the file's relative imports, so the import check parses nothing."""
    data = file.text.encode("utf-8")
    tree = parse(data)
    if digest:
        _remember_imports((file.path, digest), _imports_in(data, tree.root_node))
    if not tree.root_node.has_error:
        return _default_export_problem(file, data, tree.root_node, shown) if node else None
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


# What JavaScript's typeof says of a default export that is a literal (the engine's
# "Got: <typeof>"); anything else (a function, a class, a name) may be a function.
LITERAL_TYPEOF = {
    "number": "number",
    "string": "string",
    "template_string": "string",
    "object": "object",
    "array": "object",
    "null": "object",
    "true": "boolean",
    "false": "boolean",
    "undefined": "undefined",
    "regex": "object",
}
ENGINE_WANTS = "export default async function run(ctx, input) { … }"


def _default_export_problem(
    file: CodeFile, data: bytes, program: Any, shown: str
) -> Problem | None:
    """The engine's check of a node module, before deploy: its default export must be a
    function (`typeof … === "function"`); a literal, or no default export at all, stops the
    engine at start."""

    def at(node: Any, message: str) -> Problem:
        line = node.start_point[0] + 1
        return Problem(shown, message, line, 1, source=source_line(file.text, line))

    named = None
    for statement in program.children:
        if statement.type != "export_statement":
            continue
        kinds = [child.type for child in statement.children]
        if "default" in kinds:
            value = statement.children[kinds.index("default") + 1]
            typeof = LITERAL_TYPEOF.get(value.type)
            if typeof is None:
                return None
            return at(
                statement,
                f"the default export is a{'n' if typeof[0] in 'aeiou' else ''} {typeof}, not "
                f"a function: the engine refuses to start (write {ENGINE_WANTS})",
            )
        for clause in statement.children:
            if clause.type != "export_clause":
                continue
            for specifier in clause.children:
                names = [c for c in specifier.children if c.type == "identifier"]
                if names and data[names[-1].start_byte : names[-1].end_byte] == b"default":
                    return None
        function = next((c for c in statement.children if c.type == "function_declaration"), None)
        if named is None and function is not None:
            named = function
    if named is not None:
        name = named.child_by_field_name("name")
        called = data[name.start_byte : name.end_byte].decode() if name is not None else "run"
        return at(
            named,
            f"no default export: the engine refuses to start. Did you mean `export default "
            f"async function {called}`?",
        )
    return Problem(shown, f"no default export: the engine refuses to start (add {ENGINE_WANTS})")


def syntax_problems(
    files: Iterable[CodeFile], display_root: str, nodes: Iterable[str] = ()
) -> list[Problem]:
    """Every .ts file's first syntax error; for the files in `nodes` (paths relative to
    the workflow), a missing or non-function default export too."""
    entries = {os.path.normpath(path) for path in nodes}
    out = []
    for file in files:
        if not file.path.endswith(".ts"):
            continue
        problem = syntax_problem(
            file, os.path.join(display_root, file.path), os.path.normpath(file.path) in entries
        )
        if problem is not None:
            out.append(problem)
    return out


# --- relative imports ---------------------------------------------------------------------

_imports_seen: dict[tuple[str, bytes], tuple[tuple[str, int, int], ...]] = {}


def relative_imports(file: CodeFile) -> tuple[tuple[str, int, int], ...]:
    """The module's static relative imports and re-exports: (specifier, line, column).
    `import type` is left out: Deno erases it without loading the file. Cached by
    content, as the syntax check is."""
    digest = hashlib.blake2b(file.text.encode("utf-8", "surrogatepass"), digest_size=16)
    key = (file.path, digest.digest())
    if key not in _imports_seen:
        data = file.text.encode("utf-8")
        _remember_imports(key, _imports_in(data, parse(data).root_node))
    return _imports_seen[key]


def _remember_imports(key: tuple[str, bytes], found: tuple[tuple[str, int, int], ...]) -> None:
    if len(_imports_seen) >= CACHE_ENTRIES:
        _imports_seen.clear()
    _imports_seen[key] = found


def _imports_in(data: bytes, program: Any) -> tuple[tuple[str, int, int], ...]:
    found = []
    for statement in program.children:
        if statement.type not in ("import_statement", "export_statement"):
            continue
        if any(child.type == "type" for child in statement.children):
            continue
        source = next((c for c in statement.children if c.type == "string"), None)
        if source is None:
            continue
        specifier = data[source.start_byte + 1 : source.end_byte - 1].decode("utf-8", "replace")
        if specifier.startswith(("./", "../")):
            row, column = source.start_point
            found.append((specifier, row + 1, column + 2))
    return tuple(found)


def import_problems(
    files: list[CodeFile], display_root: str, skip: AbstractSet[str] = frozenset()
) -> list[Problem]:
    """A relative import of a file that is not deployed: the engine would stop at start
    ("Module not found"). Files too large to parse here (LARGE_CHARS), and those in `skip`
    (shown paths of files that do not parse), are not looked into."""
    deployed = {file.path for file in files}
    out = []
    for file in files:
        shown = os.path.join(display_root, file.path)
        if not file.path.endswith(".ts") or len(file.text) > LARGE_CHARS or shown in skip:
            continue
        for specifier, line, column in relative_imports(file):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(file.path), specifier))
            if target in deployed:
                continue
            if not target.startswith("nodes/"):
                why = "it is outside nodes/, and only files below nodes/ are deployed"
            elif not posixpath.splitext(target)[1] and f"{target}.ts" in deployed:
                why = f"Deno needs the extension: did you mean {specifier}.ts?"
            else:
                close = difflib.get_close_matches(target, sorted(deployed), n=1, cutoff=0.8)
                why = "no such file is deployed" + (
                    f" (did you mean {posixpath.relpath(close[0], posixpath.dirname(file.path))}?)"
                    if close
                    else ""
                )
            out.append(
                Problem(
                    shown,
                    f"imports {specifier!r}: {why}; the engine would stop at start "
                    "(Module not found)",
                    line,
                    column,
                    source=source_line(file.text, line),
                )
            )
    return out
