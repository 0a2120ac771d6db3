"""A simulated Pipedreamer engine, in process: the fallback where the stand-in engine
(engine-image/main.ts) cannot run under Deno (settings' engine "simulated"), run by the
kubelets over the files the pod actually mounts (the ConfigMap as projected through the
volume's items). Its start-up failures are worded as the stand-in's under Deno are
("Engine failed to start: …", exit 1).

It follows the real engine (REFERENCE.md §2), not pdwatch: it reads `workflow.yaml` as
YAML 1.2 (an unquoted `version: 1.10` is the number 1.1), prints its start-up lines in
the engine's order, compiles the DAG (stages by Kahn's algorithm, the ready queue kept
sorted) and exits when `edges` is not an array, warns and uses 30 s for a `config.timeout`
it cannot read, and only then loads the node modules: a module that does not parse as
TypeScript (tree-sitter's grammar, as Deno would refuse it), a missing module or relative
import, a top-level `throw new Error("…")` or a top-level await that never settles crashes
it; a top-level `console.log("…")` prints; a top-level await of a timer
(`await new Promise((r) => setTimeout(r, MS))`) holds the loading for MS milliseconds (the
kubelet drives `boot()`, which yields a Wait for it). Then it serves, with the server's own
listening lines.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import posixpath
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import yaml

ROOT = "/app/workflow"
IMPORT_RE = re.compile(r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s+["'](\.{1,2}/[^"']+)["']""", re.M)
CONSOLE_RE = re.compile(r"""^console\.(?:log|info)\((["'`])(.*?)\1\);?\s*$""")
THROW_RE = re.compile(r"""^throw new Error\((["'`])(.*?)\1\);?\s*$""")
# Top-level awaits. One that never settles, with nothing else pending, ends Deno: "error:
# Top-level await promise never resolved" (deno_core's module evaluation: a pending
# top-level await with an empty event loop). One on a timer keeps the loop alive: the
# module goes on loading when the timer fires, and the engine serves only then.
NEVER_RE = re.compile(r"^await new Promise\(\s*\(\)\s*=>\s*\{\s*\}\s*\);?\s*$")
TIMER_RE = re.compile(
    r"^await new Promise\(\s*\(?(\w+)\)?\s*=>\s*setTimeout\(\s*\1\s*,\s*([0-9_]+)\s*\)\s*\);?\s*$"
)
TIMEOUT_RE = re.compile(r"^(\d+)(s|m)$")
DEFAULT_RE = re.compile(r"^\s*export\s+default\b|\bexport\s*\{[^}]*\bas\s+default\b", re.M)
FAILED = "Engine failed to start:"
LISTENING = (
    "Workflow server listening on http://localhost:8080",
    "  POST /run    — trigger workflow execution",
    "  GET  /health — health check",
)


class Yaml12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.2's core schema, as the engine's parser (Deno std/yaml) resolves plain
    scalars: only true/false are booleans, `012` is twelve, `0o17` octal, `yes` a string."""


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", "~nN"),
    ("int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    Yaml12Loader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}",
        re.compile(_pattern),
        [*_first, ""] if _tag == "null" else list(_first),
    )


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def js_string(value: Any) -> str:
    """How JavaScript's template strings show a YAML value (`v${spec.version}`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


@functools.cache
def _typescript() -> Any:
    import tree_sitter_typescript
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_typescript.language_typescript()))


def parse_error(text: str) -> tuple[int, int] | None:
    """Where a module stops being TypeScript (1-based line and column), or None."""
    tree = _typescript().parse(text.encode("utf-8"))
    if not tree.root_node.has_error:
        return None
    stack, first = [tree.root_node], None
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            if first is None or node.start_byte < first.start_byte:
                first = node
        elif node.has_error:
            stack.extend(node.children)
    row, column = first.start_point if first is not None else (0, 0)
    return row + 1, column + 1


@dataclass
class Exit:
    code: int


@dataclass(frozen=True)
class Wait:
    """The engine's loading waits on a timer this long (program time, not scaled)."""

    seconds: float


@dataclass
class Spec:
    name: str
    version: str
    nodes: dict[str, str]  # name → path relative to workflow.yaml
    stages: list[list[str]]


class Engine:
    def __init__(self, files: dict[str, str], emit: Callable[[str], None]) -> None:
        self.files = files  # path below /app/workflow → text
        self.emit = emit
        self.spec: Spec | None = None
        self.requests = 0

    def fail(self, message: str, where: str = "") -> Exit:
        self.emit(f"{FAILED} {message}")
        if where:
            self.emit(f"    at {where}")
        return Exit(1)

    def boot(self) -> Generator[Wait, None, Exit | None]:
        """Boot as the engine does: a Wait for each top-level timer a module awaits, then
        an Exit when it dies at start, None when serving."""
        self.emit("Pipedreamer Engine starting...")
        text = self.files.get("workflow.yaml")
        if text is None:
            return self.fail(
                f'NotFound: No such file or directory (os error 2): readfile "{ROOT}/workflow.yaml"'
            )
        try:
            raw = yaml.load(text, Loader=Yaml12Loader)
        except yaml.YAMLError as exc:
            return self.fail(f"YAMLError: {str(exc).splitlines()[0]}")
        if not isinstance(raw, dict):
            return self.fail("Error: Workflow spec must be a mapping")
        self.emit(f"Workflow: {js_string(raw.get('name'))} v{js_string(raw.get('version'))}")
        nodes_raw: dict[Any, Any] = raw["nodes"] if isinstance(raw.get("nodes"), dict) else {}
        nodes = {
            str(name): str((value or {}).get("path", ""))
            for name, value in nodes_raw.items()
            if isinstance(value, dict)
        }
        edges = raw.get("edges")
        if not isinstance(edges, list):
            return self.fail(
                'Error: Workflow spec missing required field: "edges" (must be an array)'
            )
        stages = kahn(list(nodes), edges)
        self.emit(f"DAG compiled: {len(stages)} stage(s), {len(nodes)} node(s)")
        for i, stage in enumerate(stages, 1):
            self.emit(f"  Stage {i}: [{', '.join(stage)}]")
        timeout = (
            (raw.get("config") or {}).get("timeout")
            if isinstance(raw.get("config"), dict)
            else None
        )
        # JavaScript's `$` (no m flag) is the end of the text, not a final newline: fullmatch
        if timeout is not None and not TIMEOUT_RE.fullmatch(js_string(timeout)):
            self.emit(
                f'Invalid timeout format "{js_string(timeout)}" — expected "<number>s" or '
                '"<number>m". Using default 30s.'
            )
        loaded: set[str] = set()
        for path in nodes.values():
            failure = yield from self._load(posixpath.normpath(path), loaded, importer=None)
            if failure:
                return failure
            if not DEFAULT_RE.search(self.files.get(posixpath.normpath(path), "")):
                return self.fail(
                    f'Error: Node at "{path}" must export a default async function. Got: undefined'
                )
        self.spec = Spec(js_string(raw.get("name")), js_string(raw.get("version")), nodes, stages)
        for line in LISTENING:
            self.emit(line)
        return None

    def _load(
        self, path: str, loaded: set[str], importer: str | None
    ) -> Generator[Wait, None, Exit | None]:
        if path in loaded:
            return None
        loaded.add(path)
        text = self.files.get(path)
        if text is None:
            return self.fail(
                f'TypeError: Module not found "file://{ROOT}/{path}".',
                f"file://{ROOT}/{importer}" if importer else "",
            )
        position = parse_error(text)
        if position is not None:
            return self.fail(
                "TypeError: SyntaxError: Unexpected token",
                f"file://{ROOT}/{path}:{position[0]}:{position[1]}",
            )
        for target in IMPORT_RE.findall(text):
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            failure = yield from self._load(resolved, loaded, importer=path)
            if failure:
                return failure
        for number, line in enumerate(text.splitlines(), 1):
            printed = CONSOLE_RE.match(line)
            if printed:
                self.emit(printed.group(2))
            if NEVER_RE.match(line):
                self.emit("error: Top-level await promise never resolved")
                return Exit(1)
            timer = TIMER_RE.match(line)
            if timer:
                yield Wait(int(timer.group(2).replace("_", "")) / 1000)
            thrown = THROW_RE.match(line)
            if thrown:
                return self.fail(f"Error: {thrown.group(2)}", f"file://{ROOT}/{path}:{number}:7")
        return None

    def run(self, body: Any) -> dict[str, Any]:
        """POST /run: the JSON result names what ran, in DAG order."""
        assert self.spec is not None
        self.requests += 1
        order = [name for stage in self.spec.stages for name in stage]
        trigger = body.get("trigger") if isinstance(body, dict) else None
        self.emit(
            f"POST /run {json.dumps(body, separators=(',', ':'))}: ran {len(order)} "
            f"node(s) [{', '.join(order)}]"
        )
        return {
            "workflow": self.spec.name,
            "version": self.spec.version,
            "trigger": trigger,
            "nodes": order,
            "input": body,
        }


def kahn(names: list[str], edges: list[Any]) -> list[list[str]]:
    """The engine's DAG compiler: Kahn's algorithm taking the smallest ready node each time
    (the ready list re-sorted as nodes join it); a node's stage is its longest path from a
    root, and inside a stage nodes keep that topological order (a→b, z→a2: [b, a2])."""
    incoming = {n: 0 for n in names}
    following: dict[str, list[str]] = {n: [] for n in names}
    preceding: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        if not isinstance(edge, dict):
            continue
        source, target = str(edge.get("from")), str(edge.get("to"))
        if source in following and target in incoming:
            following[source].append(target)
            preceding[target].append(source)
            incoming[target] += 1
    ready = [n for n, count in incoming.items() if count == 0]
    heapq.heapify(ready)
    depth: dict[str, int] = {}
    stages: list[list[str]] = []
    while ready:
        n = heapq.heappop(ready)
        depth[n] = 1 + max((depth[p] for p in preceding[n]), default=-1)
        if depth[n] == len(stages):
            stages.append([])
        stages[depth[n]].append(n)
        for m in following[n]:
            incoming[m] -= 1
            if incoming[m] == 0:
                heapq.heappush(ready, m)
    return stages
