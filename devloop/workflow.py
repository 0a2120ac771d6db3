"""workflow.yaml → a typed Workflow, or every problem in it with file:line:column.

The rules are those of the reference CLI's `pipedreamer validate`
(REFERENCE.md §1). Scalars such as `version` are taken as written, never
through float conversion. Checks that need the disk (node files) live in
`check_node_paths`, so parsing stays a pure function of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from devloop.problems import Problem
from devloop.yamlsource import Source, compose, duplicate_keys, is_null, to_python

WORKFLOW_FILE = "workflow.yaml"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")
IDENT_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
DURATION_RE = re.compile(r"^[0-9]+(ms|s|m|h)$")
TRIGGER_TYPES = ("manual", "cron", "webhook", "queue")
TRIGGER_REQUIRED = {"cron": "schedule", "webhook": "path", "queue": "subject"}
CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*?/,\-]+$")


@dataclass(frozen=True)
class Trigger:
    type: str
    name: str | None = None
    schedule: str | None = None
    path: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class WorkflowNode:
    """A node of the DAG; `path` is normalised (`./nodes/a.ts` → `nodes/a.ts`)."""

    name: str
    path: str
    written_path: str
    line: int | None = None
    column: int | None = None
    capabilities: Any = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str


@dataclass(frozen=True)
class Workflow:
    name: str
    version: str
    description: str | None
    triggers: tuple[Trigger, ...]
    nodes: tuple[WorkflowNode, ...]
    edges: tuple[Edge, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> WorkflowNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def cron_triggers(self) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.type == "cron")

    def stages(self) -> list[list[str]]:
        """The DAG's execution stages as the engine compiles them: each stage's nodes
        depend only on earlier stages; nodes keep their order of definition."""
        remaining = [n.name for n in self.nodes]
        done: set[str] = set()
        stages: list[list[str]] = []
        while remaining:
            ready = [
                n for n in remaining if all(e.source in done for e in self.edges if e.target == n)
            ]
            if not ready:  # a cycle; parse() rejects these, so this is only defensive
                break
            stages.append(ready)
            done.update(ready)
            remaining = [n for n in remaining if n not in done]
        return stages


def parse_workflow(text: str, file: str = WORKFLOW_FILE) -> tuple[Workflow | None, list[Problem]]:
    """Parse and validate the text of a workflow.yaml; all problems, not just the first."""
    parsed = parse_workflow_partial(text, file)
    return parsed.workflow, parsed.problems


@dataclass(frozen=True)
class ParsedWorkflow:
    """The Workflow when valid; the nodes that could be read either way, so their files can
    be checked (and reported) even when another field is wrong."""

    workflow: Workflow | None
    nodes: tuple[WorkflowNode, ...]
    problems: list[Problem]


def parse_workflow_partial(text: str, file: str = WORKFLOW_FILE) -> ParsedWorkflow:
    source = Source(file)
    root, problems = compose(text, source)
    if problems:
        return ParsedWorkflow(None, (), problems)
    if root is None:
        return ParsedWorkflow(
            None,
            (),
            [
                Problem(
                    file, "file is empty; expected a mapping with name, version, triggers and nodes"
                )
            ],
        )
    if not isinstance(root, MappingNode):
        return ParsedWorkflow(
            None, (), [source.problem(root, "top level must be a mapping (name: …, version: …)")]
        )
    return _Parser(source).workflow(root)


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def error(self, node: Node | None, message: str) -> None:
        self.problems.append(self.source.problem(node, message))

    def fields(self, node: MappingNode) -> dict[str, tuple[ScalarNode, Node]]:
        self.problems.extend(duplicate_keys(node, self.source))
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                out.setdefault(key.value, (key, value))
            else:
                self.error(key, "keys must be plain strings")
        return out

    def text(self, node: Node, what: str) -> str | None:
        """A scalar's text exactly as written (never float-converted)."""
        if not isinstance(node, ScalarNode) or is_null(node):
            self.error(node, f"{what} must be a string")
            return None
        return str(node.value)

    def workflow(self, root: MappingNode) -> ParsedWorkflow:
        f = self.fields(root)
        name = self.required_text(f, "name", root)
        if name is not None and not NAME_RE.match(name):
            self.error(
                f["name"][1],
                f"name {name!r} must be kebab-case "
                f"(lowercase letters, digits and single hyphens, "
                f"starting with a letter: {NAME_RE.pattern})",
            )
        version = self.required_text(f, "version", root)
        if version is not None and not VERSION_RE.match(version):
            self.error(
                f["version"][1],
                f'version {version!r} must be MAJOR.MINOR, e.g. "1.0" ({VERSION_RE.pattern})',
            )
        description = None
        if "description" in f and not is_null(f["description"][1]):
            description = self.text(f["description"][1], "description")
        triggers = self.triggers(f.get("triggers"), root)
        nodes = self.nodes(f.get("nodes"), root)
        edges = self.edges(f.get("edges"), {n.name for n in nodes})
        config = self.config(f.get("config"))
        if self.problems or name is None or version is None:
            return ParsedWorkflow(None, nodes, sorted(self.problems, key=_position))
        workflow = Workflow(name, version, description, triggers, nodes, edges, config)
        return ParsedWorkflow(workflow, nodes, [])

    def required_text(
        self, f: dict[str, tuple[ScalarNode, Node]], key: str, parent: Node
    ) -> str | None:
        if key not in f or is_null(f[key][1]):
            self.error(parent if key not in f else f[key][0], f"{key} is required")
            return None
        return self.text(f[key][1], key)

    def triggers(self, entry: tuple[ScalarNode, Node] | None, root: Node) -> tuple[Trigger, ...]:
        if entry is None or is_null(entry[1]):
            self.error(
                root if entry is None else entry[0],
                "triggers is required: at least one trigger (e.g. - type: manual)",
            )
            return ()
        node = entry[1]
        if not isinstance(node, SequenceNode):
            self.error(node, "triggers must be a list")
            return ()
        if not node.value:
            self.error(node, "triggers must list at least one trigger")
        out = []
        names: set[str] = set()
        for i, item in enumerate(node.value):
            where = f"triggers[{i}]"
            if not isinstance(item, MappingNode):
                self.error(item, f"{where} must be a mapping with a type")
                continue
            t = self.fields(item)
            values: dict[str, str | None] = {}
            for key in ("type", "name", "schedule", "path", "subject"):
                values[key] = None
                if key in t and not is_null(t[key][1]):
                    values[key] = self.text(t[key][1], f"{where}.{key}")
            kind = values["type"]
            if kind is None:
                if "type" not in t or is_null(t["type"][1]):
                    self.error(
                        item, f"{where}.type is required (one of {', '.join(TRIGGER_TYPES)})"
                    )
                continue
            if kind not in TRIGGER_TYPES:
                self.error(
                    t["type"][1], f"{where}.type {kind!r} is not one of {', '.join(TRIGGER_TYPES)}"
                )
                continue
            needed = TRIGGER_REQUIRED.get(kind)
            if needed and not values[needed]:
                self.error(item, f"{where}: a {kind} trigger needs {needed}")
            name = values["name"]
            if name is not None:
                if not IDENT_RE.match(name):
                    self.error(t["name"][1], f"{where}.name {name!r} must match {IDENT_RE.pattern}")
                elif name in names:
                    self.error(
                        t["name"][1],
                        f"{where}.name {name!r} is used by another "
                        "trigger; trigger names must be unique",
                    )
                names.add(name)
            schedule = values["schedule"]
            if kind == "cron" and schedule:
                reason = cron_schedule_problem(schedule)
                if reason:
                    self.error(t["schedule"][1], f"{where}.schedule {schedule!r}: {reason}")
            out.append(Trigger(kind, name, schedule, values["path"], values["subject"]))
        return tuple(out)

    def nodes(self, entry: tuple[ScalarNode, Node] | None, root: Node) -> tuple[WorkflowNode, ...]:
        if entry is None or is_null(entry[1]):
            self.error(
                root if entry is None else entry[0],
                "nodes is required: at least one node (name: {path: ./nodes/x.ts})",
            )
            return ()
        node = entry[1]
        if not isinstance(node, MappingNode):
            self.error(node, "nodes must be a mapping of node name to {path: …}")
            return ()
        if not node.value:
            self.error(node, "nodes must define at least one node")
        out = []
        for key, value in self.fields(node).values():
            name = key.value
            if not IDENT_RE.match(name):
                self.error(key, f"node name {name!r} must match {IDENT_RE.pattern}")
            if not isinstance(value, MappingNode):
                self.error(value, f"node {name!r} must be a mapping with a path")
                continue
            n = self.fields(value)
            if "path" not in n or is_null(n["path"][1]):
                self.error(
                    value if "path" not in n else n["path"][0],
                    f"node {name!r}: path is required (e.g. ./nodes/{name}.ts)",
                )
                continue
            path_node = n["path"][1]
            written = self.text(path_node, f"node {name!r} path")
            if written is None:
                continue
            normal, reason = normalise_node_path(written)
            if reason:
                self.error(path_node, f"node {name!r}: path {written!r} {reason}")
                continue
            caps = to_python(n["capabilities"][1]) if "capabilities" in n else None
            mark = path_node.start_mark
            out.append(WorkflowNode(name, normal, written, mark.line + 1, mark.column + 1, caps))
        return tuple(out)

    def edges(self, entry: tuple[ScalarNode, Node] | None, names: set[str]) -> tuple[Edge, ...]:
        if entry is None or is_null(entry[1]):
            return ()
        node = entry[1]
        if not isinstance(node, SequenceNode):
            self.error(node, "edges must be a list of {from, to}")
            return ()
        out: list[Edge] = []
        where_of: dict[Edge, Node] = {}
        for i, item in enumerate(node.value):
            if not isinstance(item, MappingNode):
                self.error(item, f"edges[{i}] must be a mapping with from and to")
                continue
            e = self.fields(item)
            ends: dict[str, str] = {}
            for key in ("from", "to"):
                if key not in e or is_null(e[key][1]):
                    self.error(item, f"edges[{i}].{key} is required")
                    continue
                value = self.text(e[key][1], f"edges[{i}].{key}")
                if value is None:
                    continue
                if names and value not in names:
                    self.error(e[key][1], f"edges[{i}].{key} {value!r} is not a defined node")
                    continue
                ends[key] = value
            if len(ends) < 2:
                continue
            if ends["from"] == ends["to"]:
                self.error(
                    item, f"edges[{i}]: self-loop on {ends['from']!r} (a node cannot feed itself)"
                )
                continue
            edge = Edge(ends["from"], ends["to"])
            out.append(edge)
            where_of.setdefault(edge, item)
        cycle = find_cycle(out)
        if cycle:
            first = Edge(cycle[0], cycle[1])
            self.error(where_of[first], "edges form a cycle: " + " → ".join(cycle))
        return tuple(out)

    def config(self, entry: tuple[ScalarNode, Node] | None) -> dict[str, Any]:
        if entry is None or is_null(entry[1]):
            return {}
        node = entry[1]
        if not isinstance(node, MappingNode):
            self.error(node, "config must be a mapping")
            return {}
        f = self.fields(node)
        if "timeout" in f:
            value = f["timeout"][1]
            raw = value.value if isinstance(value, ScalarNode) else None
            if raw is None or not DURATION_RE.match(str(raw)):
                self.error(
                    value,
                    f'config.timeout must be a duration such as "30s" or '
                    f'"2m" ({DURATION_RE.pattern})',
                )
        if "retries" in f:
            retries = to_python(f["retries"][1])
            if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
                self.error(f["retries"][1], "config.retries must be a whole number ≥ 0")
        try:
            value = to_python(node)
        except Exception as exc:  # e.g. an unhashable key in a free-form map
            self.error(node, f"config cannot be read: {exc}")
            return {}
        return dict(value) if isinstance(value, dict) else {}


def normalise_node_path(written: str) -> tuple[str, str | None]:
    """`./nodes/a.ts` → `nodes/a.ts`, or the reason the path is not acceptable."""
    if "\\" in written:
        return written, "must use '/' as separator"
    pure = PurePosixPath(written)
    if pure.is_absolute():
        return written, "must be relative to the workflow directory, not absolute"
    if ".." in pure.parts:
        return written, "must not leave the workflow directory ('..')"
    parts = [p for p in pure.parts if p != "."]
    if len(parts) < 2 or parts[0] != "nodes":
        return written, "must point inside nodes/ (e.g. ./nodes/fetch.ts)"
    if not parts[-1].endswith(".ts"):
        return written, "must name a .ts file"
    return "/".join(parts), None


def check_node_paths(
    nodes: tuple[WorkflowNode, ...],
    root: Path,
    file: str,
    deployable: set[str],
    carried: frozenset[str] | set[str] = frozenset(),
) -> list[Problem]:
    """Each node path must be an existing regular .ts file inside the directory, and one of
    the files that are deployed (`deployable`), or the engine could not load it. Paths in
    `carried` were already read as such and need no further checks."""
    problems = []
    top = root.resolve()
    for node in nodes:
        if node.path in carried:
            continue
        target = root / node.path
        where = f"node {node.name!r}: path {node.written_path!r}"
        reason = None
        resolved = target.resolve()
        if not target.exists() and not target.is_symlink():
            reason = f"file {node.path} does not exist"
        elif not resolved.is_relative_to(top):
            reason = f"{node.path} is a link to {resolved}, outside the workflow directory"
        elif not resolved.is_file():
            reason = f"{node.path} is not a regular file"
        elif node.path not in deployable:
            reason = (
                "is not part of the deployed code (only .ts files below nodes/, outside "
                "hidden folders and node_modules, are deployed)"
            )
        if reason:
            problems.append(Problem(file, f"{where}: {reason}", node.line, node.column))
    return problems


def find_cycle(edges: list[Edge]) -> list[str]:
    """A cycle as a closed walk [a, b, …, a], or [] when the graph is acyclic."""
    graph: dict[str, list[str]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e.target)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return []

    for start in list(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def cron_schedule_problem(schedule: str) -> str | None:
    """Why Kubernetes would reject this CronJob schedule, or None (a syntactic check)."""
    s = schedule.strip()
    if s.startswith(("TZ=", "CRON_TZ=")):
        return "time zones in the schedule are not supported by Kubernetes; use UTC"
    if s.startswith("@"):
        if s in CRON_MACROS or s.startswith("@every "):
            return None
        return f"unknown descriptor; use one of {', '.join(sorted(CRON_MACROS))}"
    fields = s.split()
    if len(fields) != 5:
        return f"expected 5 fields (minute hour day month weekday), found {len(fields)}"
    for f in fields:
        if not CRON_FIELD_RE.match(f):
            return f"field {f!r} is not a valid cron field"
    return None


def _position(p: Problem) -> tuple[int, int]:
    return (p.line or 0, p.column or 0)
