"""workflow.yaml validation: every rule of REFERENCE.md §1, with the error text asserted."""

from __future__ import annotations

import pytest

from devloop.problems import Problem
from devloop.workflow import Edge, Workflow, kahn_stages, parse_workflow

BASE = {
    "name": "name: my-workflow",
    "version": 'version: "1.0"',
    "triggers": "triggers:\n  - type: manual",
    "nodes": "nodes:\n  fetch:\n    path: ./nodes/fetch.ts\n  store:\n    path: ./nodes/store.ts",
    "edges": "edges: []",
}


def doc(**overrides: str | None) -> str:
    parts = {**BASE, **overrides}
    return "\n".join(v for v in parts.values() if v is not None) + "\n"


def problems_of(text: str) -> list[Problem]:
    """Errors only (warnings and notes are tested on their own)."""
    wf, problems = parse_workflow(text, "wf/workflow.yaml")
    errors = [p for p in problems if p.is_error]
    assert (wf is None) == bool(errors)
    return errors


def warnings_of(text: str) -> list[str]:
    wf, problems = parse_workflow(text, "wf/workflow.yaml")
    assert wf is not None, problems
    return [str(p) for p in problems if not p.is_error]


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
    assert wf is not None
    assert wf.version == "1.10"  # safe_load would give the float 1.1
    # ... but the engine reads YAML 1.2 and prints v1.1: say so.
    assert [str(p) for p in problems] == [
        "workflow.yaml:2:10: version 1.10 is not quoted: the engine reads the number 1.1; "
        'write version: "1.10"'
    ]
    assert problems[0].severity == "warning"


@pytest.mark.parametrize("version", ["2.5", '"1.10"', '"1.0"'])
def test_versions_the_engine_reads_the_same_need_no_quotes(version: str) -> None:
    assert warnings_of(doc(version=f"version: {version}")) == []


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
    ("kind", "field"),
    [("cron", "schedule"), ("webhook", "path or provider"), ("queue", "subject")],
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
        ("*/5 * * *", "expected exactly 5 fields, found 4: [*/5 * * *]"),
        ("TZ=UTC 0 * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ("@sometimes", "unrecognized descriptor: @sometimes"),
        ("99 * * * *", "end of range (99) above maximum (59): 99"),
        ("99 99 99 99 99", "end of range (99) above maximum (59): 99"),
        (
            "@every banana",
            'failed to parse duration @every banana: time: invalid duration "banana"',
        ),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("0 0 * * 7", "end of range (7) above maximum (6): 7"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ],
)
def test_cron_schedule_checked_as_the_api_server_does(schedule: str, reason: str) -> None:
    msg = only_message(doc(triggers=f'triggers:\n  - type: cron\n    schedule: "{schedule}"'))
    assert msg.endswith(f"the API server would refuse it: {reason}"), msg


@pytest.mark.parametrize(
    "schedule",
    ["*/5 * * * *", "0 9 * * MON-FRI", "@hourly", "@every 1h30m", "0 0 ? * *", "0,,30 * * * *"],
)
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
    text = "name: Bad\nversion: one\ntriggers: []\nnodes: {}\nedges: []\n"
    messages = [f"{p.line}: {p.message.split(' must')[0]}" for p in problems_of(text)]
    assert messages == ["1: name 'Bad'", "2: version 'one'", "3: triggers", "4: nodes"]


def test_config_retries_checked() -> None:
    text = doc(config="config:\n  timeout: 30s\n  retries: -1")
    assert [p.message for p in problems_of(text)] == ["config.retries must be a whole number ≥ 0"]


@pytest.mark.parametrize(
    "timeout", ["soon", "1h", "500ms", "30", "1.5m", "[30s]", '"30s\\n"', "|\n    30s\n"]
)
def test_a_timeout_the_engine_cannot_read_is_a_warning(timeout: str) -> None:
    """The engine reads config.timeout with ^(\\d+)(s|m)$ and otherwise warns and uses 30 s."""
    (warning,) = warnings_of(doc(config=f"config:\n  timeout: {timeout}"))
    assert "the engine will warn and use the default 30s" in warning
    assert warning.startswith("wf/workflow.yaml:12:12: config.timeout")
    # (a value ending in a newline: the engine's JavaScript `$` does not match before it)


@pytest.mark.parametrize("timeout", ["30s", "2m", "600s"])
def test_timeouts_the_engine_reads(timeout: str) -> None:
    assert warnings_of(doc(config=f"config:\n  timeout: {timeout}")) == []


def test_stages_group_independent_nodes() -> None:
    nodes = "nodes:\n" + "".join(f"  {n}:\n    path: ./nodes/{n}.ts\n" for n in "abcd")
    edges = "edges:\n  - {from: a, to: c}\n  - {from: b, to: c}\n  - {from: c, to: d}"
    wf, problems = parse_workflow(doc(nodes=nodes.rstrip(), edges=edges))
    assert problems == [] and wf is not None
    assert wf.stages() == [["a", "b"], ["c"], ["d"]]


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ([("a", "b"), ("z", "a2")], [["a", "z"], ["b", "a2"]]),  # REFERENCE §2's example
        ([("z", "a"), ("m", "b")], [["m", "z"], ["b", "a"]]),  # TENTACULAR §7.3's example
        ([("a", "c"), ("b", "c"), ("c", "d")], [["a", "b"], ["c"], ["d"]]),
        ([("a", "b"), ("b", "c"), ("a", "c")], [["a"], ["b"], ["c"]]),  # longest path
        ([("a", "b"), ("a", "b")], [["a"], ["b"]]),  # a duplicate edge counts twice
    ],
)
def test_stages_as_the_engine_compiles_them(
    edges: list[tuple[str, str]], expected: list[list[str]]
) -> None:
    """Kahn's algorithm with the ready list re-sorted as nodes join it: the order inside a
    stage is topological, not always name order (both were name order before)."""
    from devloop.sim.engine import kahn

    names = sorted({n for edge in edges for n in edge})
    assert kahn_stages(names, [Edge(a, b) for a, b in edges]) == expected
    assert kahn(names, [{"from": a, "to": b} for a, b in edges]) == expected


# --- what the engine needs to start (REFERENCE §2) ------------------------------------------


@pytest.mark.parametrize("edges", [None, "edges:", "edges: {from: fetch, to: store}", "edges: x"])
def test_edges_must_be_a_list_or_the_engine_does_not_start(edges: str | None) -> None:
    msg = only_message(doc(edges=edges))
    assert "edges: []" in msg and "engine refuses to start" in msg


def test_a_bad_node_path_does_not_also_make_its_edges_wrong() -> None:
    text = doc(
        nodes="nodes:\n  fetch:\n    path: ./lib/fetch.ts\n  store:\n    path: ./nodes/store.ts",
        edges="edges:\n  - from: fetch\n    to: store",
    )
    assert [p.message for p in problems_of(text)] == [
        "node 'fetch': path './lib/fetch.ts' must point inside nodes/ (e.g. ./nodes/fetch.ts)"
    ]


def test_an_unterminated_quote_is_reported_where_it_opens() -> None:
    text = 'name: my-workflow\nversion: "1.0\ntriggers:\n  - type: manual\nnodes: {}\n'
    (problem,) = problems_of(text)
    assert (problem.line, problem.column) == (2, 10)
    assert "never closed" in problem.message
    assert problem.source == 'version: "1.0'


@pytest.mark.parametrize("name", ['"fetch\\n"', '"fetch\\t"', '"fe tch"'])
def test_node_names_with_trailing_newlines_or_spaces_are_refused(name: str) -> None:
    msg = only_message(doc(nodes=f"nodes:\n  {name}:\n    path: ./nodes/fetch.ts"))
    assert msg.startswith("wf/workflow.yaml:6:3: node name ") and "must match" in msg


def test_generated_name_problems_name_the_line_of_the_field() -> None:
    from devloop.render import _generated_name_problems
    from devloop.yamlsource import Source

    long_name = "a" * 50
    wf, _ = parse_workflow(
        doc(name=f"name: {long_name}", triggers="triggers:\n  - {type: cron, schedule: '@daily'}")
    )
    assert wf is not None
    (problem,) = _generated_name_problems(wf, Source("wf/workflow.yaml", "x"))
    assert problem.line == 1 and "CronJob" in problem.message


# --- unknown keys and the reference's later format ------------------------------------------


def test_unknown_keys_are_warnings_with_the_nearest_known_key() -> None:
    text = doc(
        edges="egdes:\n  - from: fetch\n    to: store\nedges: []",
        nodes="nodes:\n  fetch:\n    path: ./nodes/fetch.ts\n    capabilites: [net]\n"
        "  store:\n    path: ./nodes/store.ts",
        triggers="triggers:\n  - type: manual\n    nmae: go",
    )
    assert warnings_of(text) == [
        "wf/workflow.yaml:5:5: unknown key triggers[0].'nmae' is ignored; did you mean 'name'?",
        "wf/workflow.yaml:9:5: unknown key nodes.fetch.'capabilites' is ignored; "
        "did you mean 'capabilities'?",
        "wf/workflow.yaml:12:1: unknown key 'egdes' is ignored; did you mean 'edges'?",
    ]


def test_the_later_format_is_read_with_a_note_for_what_pdwatch_does_not_do() -> None:
    text = doc(
        triggers="triggers:\n  - type: webhook\n    provider: github\n    event: push\n"
        "    actions: [opened]",
        config="deployment:\n  namespace: team-a\nmetadata:\n  group: ops\n  tags: [a]\n"
        "contract:\n  version: '1'\n  dependencies:\n    api:\n      protocol: https\n"
        "      host: api.example.com\n      port: 443\n"
        "sidecars:\n  - name: proxy\n    image: envoy:1",
    )
    wf, problems = parse_workflow(text)
    assert wf is not None and wf.namespace == "team-a"
    assert wf.triggers[0].provider == "github"
    assert [(p.severity, p.message.split(" ")[0]) for p in problems] == [("note", "sidecars")]
    assert wf.metadata.tags == ("a",)
    assert wf.contract is not None
    assert [(d.name, d.host, d.port) for d in wf.contract.dependencies] == [
        ("api", "api.example.com", 443)
    ]


def test_deployment_namespace_must_be_a_namespace_name() -> None:
    msg = only_message(doc(config="deployment:\n  namespace: Team_A"))
    assert "deployment.namespace 'Team_A' is not a namespace name" in msg


# --- hostile input: bounded, never an exception -------------------------------------------


@pytest.mark.parametrize("tag", ["!net", "!int", "!!python/object:os.system", "!!python/name:os"])
def test_unknown_tags_are_errors_with_their_line(tag: str) -> None:
    text = doc(nodes=f"nodes:\n  fetch:\n    path: ./nodes/fetch.ts\n    capabilities: {tag} x")
    msg = only_message(text)
    assert msg.startswith("wf/workflow.yaml:8:19: unknown tag") and "standard types" in msg


def test_deep_nesting_is_refused_not_a_crash() -> None:
    deep = "[" * 900 + "]" * 900
    text = doc(nodes=f"nodes:\n  fetch:\n    path: ./nodes/fetch.ts\n    capabilities: {deep}")
    msg = only_message(text)
    assert "nested more than 64 levels deep" in msg


def test_alias_expansion_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    text = doc(config="config:\n  " + "\n  ".join(lines))
    msg = only_message(text)
    assert "expands to more than 100,000 values" in msg


def test_a_long_chain_of_edges_parses_and_stages_in_linear_time() -> None:
    count = 3000
    nodes = "nodes:\n" + "".join(f"  n{i}:\n    path: ./nodes/n{i}.ts\n" for i in range(count))
    edges = "edges:\n" + "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(count - 1))
    wf, problems = parse_workflow(doc(nodes=nodes.rstrip(), edges=edges.rstrip()))
    assert problems == [] and wf is not None
    stages = wf.stages()
    assert len(stages) == count and stages[-1] == [f"n{count - 1}"]


def test_a_cycle_in_a_long_chain_is_found() -> None:
    count = 3000
    nodes = "nodes:\n" + "".join(f"  n{i}:\n    path: ./nodes/n{i}.ts\n" for i in range(count))
    edges = "edges:\n" + "".join(f"  - {{from: n{i}, to: n{i + 1}}}\n" for i in range(count - 1))
    edges += f"  - {{from: n{count - 1}, to: n0}}"
    msg = only_message(doc(nodes=nodes.rstrip(), edges=edges))
    assert "edges form a cycle: n0 → n1 → n2" in msg and msg.endswith(f"n{count - 1} → n0")


def test_stages_list_the_nodes_of_a_stage_in_name_order() -> None:
    """Kahn's algorithm with the ready queue sorted, as the engine compiles the DAG."""
    nodes = "nodes:\n" + "".join(f"  {n}:\n    path: ./nodes/{n}.ts\n" for n in ["zeta", "alpha"])
    wf, _ = parse_workflow(doc(nodes=nodes.rstrip()))
    assert wf is not None and wf.stages() == [["alpha", "zeta"]]


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85"])
def test_a_line_break_only_yaml_one_one_knows_is_refused(char: str) -> None:
    """PyYAML (YAML 1.1) breaks the line at U+2028, U+2029 and NEL; the engine's YAML 1.2
    parser does not: `name: a<LS>version: x` is two keys to one and one value to the other."""
    text = doc().replace("\nversion:", f"{char}version:", 1)
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert f"U+{ord(char):04X}" in problems[0].message
    assert problems[0].line == 1
