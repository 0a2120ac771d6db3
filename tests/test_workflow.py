"""workflow.yaml validation: every rule of REFERENCE.md §1, with the error text asserted."""

from __future__ import annotations

import pytest

from devloop.problems import Problem
from devloop.workflow import Workflow, parse_workflow

BASE = {
    "name": "name: my-workflow",
    "version": 'version: "1.0"',
    "triggers": "triggers:\n  - type: manual",
    "nodes": "nodes:\n  fetch:\n    path: ./nodes/fetch.ts\n  store:\n    path: ./nodes/store.ts",
}


def doc(**overrides: str | None) -> str:
    parts = {**BASE, **overrides}
    return "\n".join(v for v in parts.values() if v is not None) + "\n"


def problems_of(text: str) -> list[Problem]:
    wf, problems = parse_workflow(text, "wf/workflow.yaml")
    assert (wf is None) == bool(problems)
    return problems


def only_message(text: str) -> str:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return str(problems[0])


def test_valid_workflow_parses_into_typed_objects() -> None:
    text = doc(
        edges="edges:\n  - from: fetch\n    to: store",
        config="config:\n  timeout: 30s\n  retries: 2\n  extra: [1, 2]",
    )
    wf, problems = parse_workflow(text)
    assert problems == []
    assert isinstance(wf, Workflow)
    assert wf.name == "my-workflow" and wf.version == "1.0"
    assert [n.name for n in wf.nodes] == ["fetch", "store"]
    assert wf.nodes[0].path == "nodes/fetch.ts"
    assert wf.nodes[0].written_path == "./nodes/fetch.ts"
    assert [(e.source, e.target) for e in wf.edges] == [("fetch", "store")]
    assert wf.config == {"timeout": "30s", "retries": 2, "extra": [1, 2]}
    assert wf.stages() == [["fetch"], ["store"]]


def test_version_is_read_as_written_not_as_float() -> None:
    wf, problems = parse_workflow(doc(version="version: 1.10"))
    assert problems == [] and wf is not None
    assert wf.version == "1.10"  # safe_load would give the float 1.1


def test_yaml_syntax_error_reports_its_line() -> None:
    text = doc() + "config:\n  timeout: [30s\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].file == "wf/workflow.yaml"
    assert problems[0].line is not None and problems[0].line >= 9
    assert "YAML syntax error" in problems[0].message


def test_empty_file() -> None:
    assert "file is empty" in only_message("")


def test_top_level_must_be_mapping() -> None:
    assert only_message("- a\n- b\n") == (
        "wf/workflow.yaml:1:1: top level must be a mapping (name: …, version: …)"
    )


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("my-workflow", True),
        ("w2-x9", True),
        ("My-workflow", False),
        ("my_workflow", False),
        ("-x", False),
        ("x-", False),
        ("a--b", False),
        ("1abc", False),
    ],
)
def test_name_must_be_kebab_case(name: str, ok: bool) -> None:
    problems = problems_of(doc(name=f"name: {name}"))
    if ok:
        assert problems == []
    else:
        assert [str(p) for p in problems] == [
            f"wf/workflow.yaml:1:7: name {name!r} must be kebab-case (lowercase letters, digits "
            "and single hyphens, starting with a letter: ^[a-z][a-z0-9]*(-[a-z0-9]+)*$)"
        ]


def test_name_required() -> None:
    assert only_message(doc(name=None)) == "wf/workflow.yaml:1:1: name is required"


@pytest.mark.parametrize("version", ['"1"', '"v1.0"', '"1.0.0"', "1", '""'])
def test_version_format(version: str) -> None:
    msg = only_message(doc(version=f"version: {version}"))
    assert "must be MAJOR.MINOR" in msg and msg.startswith("wf/workflow.yaml:2:10:")


def test_version_required() -> None:
    assert only_message(doc(version=None)) == "wf/workflow.yaml:1:1: version is required"


def test_triggers_required_and_non_empty() -> None:
    assert "triggers is required" in only_message(doc(triggers=None))
    assert "triggers must list at least one trigger" in only_message(doc(triggers="triggers: []"))


def test_trigger_type_must_be_known() -> None:
    msg = only_message(doc(triggers="triggers:\n  - type: timer"))
    assert msg == (
        "wf/workflow.yaml:4:11: triggers[0].type 'timer' is not one of manual, cron, webhook, queue"
    )


@pytest.mark.parametrize(
    ("kind", "field"), [("cron", "schedule"), ("webhook", "path"), ("queue", "subject")]
)
def test_trigger_required_field(kind: str, field: str) -> None:
    msg = only_message(doc(triggers=f"triggers:\n  - type: {kind}"))
    assert msg == f"wf/workflow.yaml:4:5: triggers[0]: a {kind} trigger needs {field}"


def test_trigger_name_format_and_uniqueness() -> None:
    text = doc(
        triggers="triggers:\n  - type: manual\n    name: Bad Name\n  - type: manual\n"
        "    name: again\n  - type: manual\n    name: again"
    )
    messages = [p.message for p in problems_of(text)]
    assert messages == [
        "triggers[0].name 'Bad Name' must match ^[a-z][a-z0-9_-]*$",
        "triggers[2].name 'again' is used by another trigger; trigger names must be unique",
    ]


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("*/5 * * *", "expected 5 fields (minute hour day month weekday), found 4"),
        ("TZ=UTC 0 * * * *", "time zones in the schedule are not supported"),
        ("@sometimes", "unknown descriptor"),
    ],
)
def test_cron_schedule_checked(schedule: str, reason: str) -> None:
    msg = only_message(doc(triggers=f'triggers:\n  - type: cron\n    schedule: "{schedule}"'))
    assert reason in msg


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 9 * * MON-FRI", "@hourly"])
def test_valid_cron_schedules(schedule: str) -> None:
    assert problems_of(doc(triggers=f'triggers:\n  - type: cron\n    schedule: "{schedule}"')) == []


def test_nodes_required_and_non_empty() -> None:
    assert "nodes is required" in only_message(doc(nodes=None))
    assert "nodes must define at least one node" in only_message(doc(nodes="nodes: {}"))


def test_node_name_format() -> None:
    msg = only_message(doc(nodes="nodes:\n  Fetch:\n    path: ./nodes/fetch.ts"))
    assert msg == "wf/workflow.yaml:6:3: node name 'Fetch' must match ^[a-z][a-z0-9_-]*$"


def test_node_path_required() -> None:
    msg = only_message(doc(nodes="nodes:\n  fetch:\n    capabilities: [net]"))
    assert "node 'fetch': path is required (e.g. ./nodes/fetch.ts)" in msg


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../other/nodes/x.ts", "must not leave the workflow directory ('..')"),
        ("nodes/../../x.ts", "must not leave the workflow directory ('..')"),
        ("/etc/passwd.ts", "must be relative to the workflow directory, not absolute"),
        ("./lib/x.ts", "must point inside nodes/ (e.g. ./nodes/fetch.ts)"),
        ("./nodes/x.js", "must name a .ts file"),
        ("nodes\\x.ts", "must use '/' as separator"),
    ],
)
def test_node_path_rules(path: str, reason: str) -> None:
    msg = only_message(doc(nodes=f"nodes:\n  fetch:\n    path: {path}"))
    assert msg == f"wf/workflow.yaml:7:11: node 'fetch': path {path!r} {reason}"


def test_duplicate_node_is_reported() -> None:
    msg = only_message(
        doc(nodes="nodes:\n  a:\n    path: ./nodes/a.ts\n  a:\n    path: ./nodes/b.ts")
    )
    assert msg == "wf/workflow.yaml:8:3: duplicate key 'a'"


def test_edges_must_reference_defined_nodes() -> None:
    msg = only_message(doc(edges="edges:\n  - from: fetch\n    to: nowhere"))
    assert msg == "wf/workflow.yaml:12:9: edges[0].to 'nowhere' is not a defined node"


def test_edges_reject_self_loops() -> None:
    msg = only_message(doc(edges="edges:\n  - from: fetch\n    to: fetch"))
    assert (
        msg == "wf/workflow.yaml:11:5: edges[0]: self-loop on 'fetch' (a node cannot feed itself)"
    )


def test_edges_reject_cycles() -> None:
    nodes = "nodes:\n" + "".join(f"  {n}:\n    path: ./nodes/{n}.ts\n" for n in "abc")
    edges = "edges:\n  - {from: a, to: b}\n  - {from: b, to: c}\n  - {from: c, to: a}"
    msg = only_message(doc(nodes=nodes.rstrip(), edges=edges))
    assert msg.endswith("edges form a cycle: a → b → c → a")


def test_all_problems_are_collected_in_file_order() -> None:
    text = "name: Bad\nversion: one\ntriggers: []\nnodes: {}\n"
    messages = [f"{p.line}: {p.message.split(' must')[0]}" for p in problems_of(text)]
    assert messages == ["1: name 'Bad'", "2: version 'one'", "3: triggers", "4: nodes"]


def test_config_timeout_and_retries_checked() -> None:
    text = doc(config="config:\n  timeout: soon\n  retries: -1")
    messages = [p.message for p in problems_of(text)]
    assert messages == [
        'config.timeout must be a duration such as "30s" or "2m" (^[0-9]+(ms|s|m|h)$)',
        "config.retries must be a whole number ≥ 0",
    ]


def test_stages_group_independent_nodes() -> None:
    nodes = "nodes:\n" + "".join(f"  {n}:\n    path: ./nodes/{n}.ts\n" for n in "abcd")
    edges = "edges:\n  - {from: a, to: c}\n  - {from: b, to: c}\n  - {from: c, to: d}"
    wf, problems = parse_workflow(doc(nodes=nodes.rstrip(), edges=edges))
    assert problems == [] and wf is not None
    assert wf.stages() == [["a", "b"], ["c"], ["d"]]
