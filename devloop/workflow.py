"""workflow.yaml → a typed Workflow, or every problem in it with file:line:column.

The rules are those of the reference CLI's `pipedreamer validate` (REFERENCE.md §1),
plus what the engine needs to start (§2): `edges` must be a list (else the engine exits),
and a `config.timeout` it cannot read is a warning (it falls back to 30 s). Keys of the
reference's later format (deployment, metadata, contract, sidecars, webhook providers)
are known; any other key is a warning with the nearest known key. Scalars such as
`version` are taken as written, never through float conversion. Checks that need the
disk (node files) live in `check_node_paths`, so parsing stays a pure function of the
text.
"""

from __future__ import annotations

import difflib
import heapq
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from devloop import cronspec, names
from devloop.contract import Contract, Metadata, parse_contract, parse_metadata
from devloop.problems import ERROR, NOTE, WARNING, Problem
from devloop.safefiles import inside
from devloop.yamlsource import Source, UnreadableValue, compose, duplicate_keys, is_null, to_python

WORKFLOW_FILE = "workflow.yaml"
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+$")
IDENT_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
ENGINE_TIMEOUT_RE = re.compile(r"^(\d+)(s|m)$")  # the engine's own pattern (REFERENCE §2)
TRIGGER_TYPES = ("manual", "cron", "webhook", "queue")
TRIGGER_REQUIRED = {"cron": ("schedule",), "webhook": ("path", "provider"), "queue": ("subject",)}

TOP_KEYS = (
    "name",
    "version",
    "description",
    "triggers",
    "nodes",
    "edges",
    "config",
    "deployment",
    "metadata",
    "contract",
    "sidecars",
)
NODE_KEYS = ("path", "capabilities")
TRIGGER_KEYS = ("type", "name", "schedule", "path", "subject", "provider", "event", "actions")
EDGE_KEYS = ("from", "to")
DEPLOYMENT_KEYS = ("namespace",)
# Sections of the later format that pdwatch accepts but does not act on, and what that means.
NOT_ACTED_ON = {
    "sidecars": "sidecars are accepted but not deployed by pdwatch (only the engine runs)",
}


def fullmatch(pattern: re.Pattern[str], text: str) -> bool:
    """The whole text matches (`re.match` with `$` lets a final newline through: a name
    ending in one is not a name)."""
    return pattern.fullmatch(text) is not None


@dataclass(frozen=True)
class Trigger:
    type: str
    name: str | None = None
    schedule: str | None = None
    path: str | None = None
    subject: str | None = None
    provider: str | None = None
    event: str | None = None  # a webhook's GitHub event (X-GitHub-Event) it answers
    actions: tuple[str, ...] = ()  # and the payload actions; empty: any


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
    namespace: str | None = None  # deployment.namespace
    contract: Contract | None = None  # the Tentacular format's; None when not written
    metadata: Metadata = field(default_factory=Metadata)
    name_line: int | None = None  # where `name` and `version` are written, for problems
    version_line: int | None = None

    def node(self, name: str) -> WorkflowNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def cron_triggers(self) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.type == "cron")

    def stages(self) -> list[list[str]]:
        """The DAG's execution stages as the engine compiles them (kahn_stages)."""
        return kahn_stages([n.name for n in self.nodes], self.edges)


def kahn_stages(names: Iterable[str], edges: Iterable[Edge]) -> list[list[str]]:
    """The engine's compiler (REFERENCE §2, TENTACULAR §7.3): Kahn's algorithm taking the
    smallest ready node each time (the ready list re-sorted as nodes join it), so the order
    is the lexicographically smallest topological one; a node's stage is its longest path
    from a root; inside a stage, nodes keep that order (not name order: a→b, z→a2 gives
    stage 2 [b, a2]). O((nodes + edges) log nodes); nodes on a cycle are left out."""
    indegree = dict.fromkeys(names, 0)
    targets: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for e in edges:
        if e.source in indegree and e.target in indegree:
            targets.setdefault(e.source, []).append(e.target)
            sources.setdefault(e.target, []).append(e.source)
            indegree[e.target] += 1
    ready = [n for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    depth: dict[str, int] = {}
    stages: list[list[str]] = []
    while ready:
        n = heapq.heappop(ready)
        depth[n] = 1 + max((depth[p] for p in sources.get(n, [])), default=-1)
        if depth[n] == len(stages):
            stages.append([])
        stages[depth[n]].append(n)
        for m in targets.get(n, []):
            indegree[m] -= 1
            if indegree[m] == 0:
                heapq.heappush(ready, m)
    return stages


def parse_workflow(text: str, file: str = WORKFLOW_FILE) -> tuple[Workflow | None, list[Problem]]:
    """Parse and validate the text of a workflow.yaml; all problems, not just the first.
    The Workflow is None exactly when there is an error (warnings leave it usable)."""
    parsed = parse_workflow_partial(text, file)
    return parsed.workflow, parsed.problems


@dataclass(frozen=True)
class ParsedWorkflow:
    """The Workflow when valid; the nodes that could be read either way, so their files can
    be checked (and reported) even when another field is wrong."""

    workflow: Workflow | None
    nodes: tuple[WorkflowNode, ...]
    problems: list[Problem]


# Line breaks to YAML 1.1 (PyYAML, pdwatch) but not to YAML 1.2 (the engine's parser):
# the two would read a different workflow from the same file.
YAML11_ONLY_BREAKS = {"\u2028": "LINE SEPARATOR", "\u2029": "PARAGRAPH SEPARATOR", "\x85": "NEL"}


def _ambiguous_breaks(text: str, file: str) -> list[Problem]:
    problems = []
    for number, line in enumerate(re.split("\r\n|\n|\r", text), 1):
        for char, name in YAML11_ONLY_BREAKS.items():
            if char in line:
                problems.append(
                    Problem(
                        file,
                        f"holds U+{ord(char):04X} ({name}): pdwatch's YAML 1.1 reads it as a line "
                        "break and the engine's YAML 1.2 does not, so the two would read "
                        "different workflows; remove it or write a plain newline",
                        number,
                        line.index(char) + 1,
                    )
                )
    return problems


def parse_workflow_partial(text: str, file: str = WORKFLOW_FILE) -> ParsedWorkflow:
    breaks = _ambiguous_breaks(text, file)
    if breaks:
        return ParsedWorkflow(None, (), breaks)
    source = Source(file, text)
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


def did_you_mean(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Parser:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def error(self, node: Node | None, message: str) -> None:
        self.problems.append(self.source.problem(node, message))

    def warn(self, node: Node | None, message: str, severity: str = WARNING) -> None:
        self.problems.append(self.source.problem(node, message, severity))

    def fields(
        self, node: MappingNode, known: tuple[str, ...] | None = None, where: str = ""
    ) -> dict[str, tuple[ScalarNode, Node]]:
        self.problems.extend(duplicate_keys(node, self.source))
        out: dict[str, tuple[ScalarNode, Node]] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error(key, "keys must be plain strings")
                continue
            out.setdefault(key.value, (key, value))
            if known is not None and key.value not in known:
                self.warn(
                    key,
                    f"unknown key {where}{key.value!r} is ignored{did_you_mean(key.value, known)}",
                )
        return out

    def text(self, node: Node, what: str) -> str | None:
        """A scalar's text exactly as written (never float-converted)."""
        if not isinstance(node, ScalarNode) or is_null(node):
            self.error(node, f"{what} must be a string")
            return None
        return str(node.value)

    def value(self, node: Node, what: str) -> Any:
        try:
            return to_python(node)
        except UnreadableValue as exc:
            self.error(exc.node or node, f"{what} cannot be read: {exc}")
            return None

    def workflow(self, root: MappingNode) -> ParsedWorkflow:
        f = self.fields(root, TOP_KEYS)
        name = self.required_text(f, "name", root)
        if name is not None and not fullmatch(NAME_RE, name):
            self.error(
                f["name"][1],
                f"name {name!r} must be kebab-case "
                f"(lowercase letters, digits and single hyphens, "
                f"starting with a letter: {NAME_RE.pattern})",
            )
        version = self.required_text(f, "version", root)
        if version is not None and not fullmatch(VERSION_RE, version):
            self.error(
                f["version"][1],
                f'version {version!r} must be MAJOR.MINOR, e.g. "1.0" ({VERSION_RE.pattern})',
            )
        elif version is not None:
            self.unquoted_version(f["version"][1], version)
        description = None
        if "description" in f and not is_null(f["description"][1]):
            description = self.text(f["description"][1], "description")
        triggers = self.triggers(f.get("triggers"), root)
        nodes, node_names = self.nodes(f.get("nodes"), root)
        edges = self.edges(f.get("edges"), root, node_names)
        config = self.config(f.get("config"))
        namespace = self.deployment(f.get("deployment"))
        contract, metadata = None, Metadata()
        if "contract" in f:
            contract, found = parse_contract(f["contract"][1], self.source)
            self.problems += found
        if "metadata" in f:
            metadata, found = parse_metadata(f["metadata"][1], self.source)
            self.problems += found
        for key, note in NOT_ACTED_ON.items():
            if key in f and not is_null(f[key][1]):
                self.warn(f[key][0], note, NOTE)
        problems = sorted(self.problems, key=_position)
        if any(p.severity == ERROR for p in problems) or name is None or version is None:
            return ParsedWorkflow(None, nodes, problems)
        workflow = Workflow(
            name,
            version,
            description,
            triggers,
            nodes,
            edges,
            config,
            namespace,
            contract,
            metadata,
            f["name"][1].start_mark.line + 1,
            f["version"][1].start_mark.line + 1,
        )
        return ParsedWorkflow(workflow, nodes, problems)

    def unquoted_version(self, node: Node, version: str) -> None:
        """The engine reads YAML 1.2: an unquoted 1.10 is the number 1.1 (REFERENCE §2)."""
        if isinstance(node, ScalarNode) and not node.style:  # plain (libyaml: "")
            number = float(version)
            shown = repr(number) if number != int(number) else str(int(number))
            if shown != version:
                self.warn(
                    node,
                    f"version {version} is not quoted: the engine reads the number {shown}; "
                    f'write version: "{version}"',
                )

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
            t = self.fields(item, TRIGGER_KEYS, f"{where}.")
            values: dict[str, str | None] = {}
            for key in ("type", "name", "schedule", "path", "subject", "provider", "event"):
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
            needed = TRIGGER_REQUIRED.get(kind, ())
            if needed and not any(values[k] for k in needed):
                self.error(item, f"{where}: a {kind} trigger needs {' or '.join(needed)}")
            name = values["name"]
            if name is not None:
                if not fullmatch(IDENT_RE, name):
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
                reason = cronspec.schedule_problem(schedule)
                if reason:
                    self.error(
                        t["schedule"][1],
                        f"{where}.schedule {schedule!r}: the API server would refuse it: {reason}",
                    )
            actions = self.actions(t["actions"][1], where) if "actions" in t else ()
            out.append(
                Trigger(
                    kind,
                    name,
                    schedule,
                    values["path"],
                    values["subject"],
                    values["provider"],
                    values["event"],
                    actions,
                )
            )
        return tuple(out)

    def actions(self, node: Node, where: str) -> tuple[str, ...]:
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.error(node, f"{where}.actions must be a list of action names")
            return ()
        return tuple(text for item in node.value if (text := self.text(item, f"{where}.actions[]")))

    def nodes(
        self, entry: tuple[ScalarNode, Node] | None, root: Node
    ) -> tuple[tuple[WorkflowNode, ...], set[str]]:
        """The readable nodes, and the names of every node defined (even one whose path is
        wrong: an edge naming it is not a second mistake)."""
        if entry is None or is_null(entry[1]):
            self.error(
                root if entry is None else entry[0],
                "nodes is required: at least one node (name: {path: ./nodes/x.ts})",
            )
            return (), set()
        node = entry[1]
        if not isinstance(node, MappingNode):
            self.error(node, "nodes must be a mapping of node name to {path: …}")
            return (), set()
        if not node.value:
            self.error(node, "nodes must define at least one node")
        out = []
        defined = self.fields(node)
        for key, value in defined.values():
            name = key.value
            if not fullmatch(IDENT_RE, name):
                self.error(key, f"node name {name!r} must match {IDENT_RE.pattern}")
            if not isinstance(value, MappingNode):
                self.error(value, f"node {name!r} must be a mapping with a path")
                continue
            n = self.fields(value, NODE_KEYS, f"nodes.{name}.")
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
            caps = self.value(n["capabilities"][1], "capabilities") if "capabilities" in n else None
            mark = path_node.start_mark
            out.append(WorkflowNode(name, normal, written, mark.line + 1, mark.column + 1, caps))
        return tuple(out), set(defined)

    def edges(
        self, entry: tuple[ScalarNode, Node] | None, root: Node, names: set[str]
    ) -> tuple[Edge, ...]:
        if entry is None or is_null(entry[1]):
            self.error(
                root if entry is None else entry[0],
                "edges is required: the engine refuses to start without it "
                '(Workflow spec missing required field: "edges" (must be an array)); '
                "write edges: [] when the nodes do not feed each other",
            )
            return ()
        node = entry[1]
        if not isinstance(node, SequenceNode):
            self.error(
                node,
                "edges must be a list of {from, to} (the engine refuses to start otherwise; "
                "edges: [] for none)",
            )
            return ()
        out: list[Edge] = []
        where_of: dict[Edge, Node] = {}
        for i, item in enumerate(node.value):
            if not isinstance(item, MappingNode):
                self.error(item, f"edges[{i}] must be a mapping with from and to")
                continue
            e = self.fields(item, EDGE_KEYS, f"edges[{i}].")
            ends: dict[str, str] = {}
            for key in EDGE_KEYS:
                if key not in e or is_null(e[key][1]):
                    self.error(item, f"edges[{i}].{key} is required")
                    continue
                value = self.text(e[key][1], f"edges[{i}].{key}")
                if value is None:
                    continue
                if names and value not in names:
                    self.error(
                        e[key][1],
                        f"edges[{i}].{key} {value!r} is not a defined node"
                        + did_you_mean(value, names),
                    )
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
            if raw is None or not fullmatch(ENGINE_TIMEOUT_RE, str(raw)):
                shown = repr(raw) if raw is not None else "this value"
                self.warn(
                    value,
                    f"config.timeout {shown} is not <number>s or <number>m: the engine will "
                    'warn and use the default 30s (write e.g. "90s" or "2m")',
                )
        if "retries" in f:
            retries = self.value(f["retries"][1], "config.retries")
            if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
                self.error(f["retries"][1], "config.retries must be a whole number ≥ 0")
        value = self.value(node, "config")
        if isinstance(value, dict):
            try:
                return dict(value)
            except TypeError:
                pass
        return {}

    def deployment(self, entry: tuple[ScalarNode, Node] | None) -> str | None:
        """`deployment.namespace`: where to deploy when no namespace is given."""
        if entry is None or is_null(entry[1]):
            return None
        node = entry[1]
        if not isinstance(node, MappingNode):
            self.error(node, "deployment must be a mapping (namespace: …)")
            return None
        f = self.fields(node, DEPLOYMENT_KEYS, "deployment.")
        if "namespace" not in f or is_null(f["namespace"][1]):
            return None
        namespace = self.text(f["namespace"][1], "deployment.namespace")
        if namespace is not None:
            errors = names.dns1123_label(namespace)
            if errors:
                self.error(
                    f["namespace"][1],
                    f"deployment.namespace {namespace!r} is not a namespace name: "
                    + "; ".join(errors),
                )
                return None
        return namespace


def normalise_node_path(written: str) -> tuple[str, str | None]:
    """`./nodes/a.ts` → `nodes/a.ts`, or the reason the path is not acceptable."""
    if "\\" in written:
        return written, "must use '/' as separator"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in written):
        return written, "must not contain control characters"
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


def _node_file_problem(target: Path, path: str, top: str, deployable: set[str]) -> str | None:
    """Why the engine could not load this node file, or None."""
    try:
        os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        return f"file {path} does not exist"
    except OSError as exc:  # a folder on its way that cannot be searched
        return f"file {path} cannot be reached: {exc.strerror}"
    resolved = os.path.realpath(target)  # never raises, even on a link loop
    if not inside(resolved, top):
        return f"{path} is a link to {resolved}, outside the workflow directory"
    if not os.path.isfile(resolved):
        return f"{path} is not a regular file (or a link that leads nowhere)"
    if path not in deployable:
        return (
            "is not part of the deployed code (only .ts files below nodes/, outside "
            "hidden folders and node_modules, are deployed)"
        )
    return None


def check_node_paths(
    nodes: tuple[WorkflowNode, ...],
    root: Path,
    file: str,
    deployable: set[str],
    carried: frozenset[str] | set[str] = frozenset(),
    source_text: str | None = None,
) -> list[Problem]:
    """Each node path must be an existing regular .ts file inside the directory, and one of
    the files that are deployed (`deployable`), or the engine could not load it. Paths in
    `carried` were already read as such and need no further checks."""
    problems = []
    top = os.path.realpath(root)
    source = Source(file, source_text)
    for node in nodes:
        if node.path in carried:
            continue
        target = root / node.path
        where = f"node {node.name!r}: path {node.written_path!r}"
        reason = _node_file_problem(target, node.path, top, deployable)
        if reason:
            problems.append(source.at(node.line or 0, node.column, f"{where}: {reason}"))
    return problems


def find_cycle(edges: list[Edge]) -> list[str]:
    """A cycle as a closed walk [a, b, …, a], or [] when the graph is acyclic. Iterative:
    a chain of thousands of nodes must not exhaust the stack."""
    graph: dict[str, list[str]] = {}
    for e in edges:
        graph.setdefault(e.source, []).append(e.target)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    for start in list(graph):
        if start in state:
            continue
        path: list[str] = [start]
        state[start] = 1
        todo: list[Iterator[str]] = [iter(graph.get(start, []))]
        while todo:
            following = next(todo[-1], None)
            if following is None:
                state[path.pop()] = 2
                todo.pop()
                continue
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state:
                state[following] = 1
                path.append(following)
                todo.append(iter(graph.get(following, [])))
    return []


def _position(p: Problem) -> tuple[int, int]:
    return (p.line or 0, p.column or 0)
