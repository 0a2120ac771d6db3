"""The stand-in engine image (engine-image/): its scripts parse, its Dockerfile keeps the
engine's contract, and its server, run by a real Deno, behaves as REFERENCE §2 says the
engine does — the same start-up lines as the embedded cluster's simulated engine (two
independent readings of one contract), the same crash words pdwatch explains, /health,
/run, secrets. The image itself cannot be built here (no container engine)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devloop.explain import Failure, Situation, explain
from devloop.node.denoengine import find_deno
from devloop.sim.engine import Engine
from tests.helpers import write_tree

IMAGE = Path(__file__).parent.parent / "engine-image"
EXAMPLES = Path(__file__).parent.parent / "examples"


DENO = find_deno()
needs_deno = pytest.mark.skipif(
    DENO is None and not os.environ.get("CI"),
    reason="deno is not installed (it is a dev dependency: pip install -e '.[dev]')",
)


def test_the_scripts_parse() -> None:
    for script in ("start.sh", "build-and-load.sh"):
        subprocess.run(["bash", "-n", str(IMAGE / script)], check=True)
    subprocess.run(["sh", "-n", str(IMAGE / "start.sh")], check=True)


def test_the_dockerfile_keeps_the_contract() -> None:
    lines = (IMAGE / "Dockerfile").read_text().splitlines()
    entrypoint = json.loads(next(x for x in lines if x.startswith("ENTRYPOINT")).split(" ", 1)[1])
    assert entrypoint[1:] == ["--workflow", "/app/workflow/workflow.yaml", "--port", "8080"]
    user = next(x for x in lines if x.startswith("USER")).split()[1]
    assert user.split(":")[0] not in ("0", "root")  # runs as pdwatch's pods do: non-root
    assert "EXPOSE 8080" in lines


# --- the server, run by Deno ------------------------------------------------------------


@dataclass
class Exited:
    code: int
    lines: list[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_command(
    workflow: Path, port: int, secrets: Path | None = None, extra: tuple[str, ...] = ()
) -> list[str]:
    assert DENO is not None, "deno is required"
    return [
        DENO,
        "run",
        "--allow-read",
        "--allow-net",
        "--allow-env",
        str(IMAGE / "main.ts"),
        "--workflow",
        str(workflow / "workflow.yaml"),
        "--port",
        str(port),
        "--secrets",
        str(secrets or workflow / "no-secrets"),
        *extra,
    ]


ENV = {**os.environ, "NO_COLOR": "1"}


def run_to_exit(workflow: Path) -> Exited:
    proc = subprocess.run(
        engine_command(workflow, free_port()),
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    return Exited(proc.returncode, (proc.stdout + proc.stderr).splitlines())


@dataclass
class Serving:
    proc: subprocess.Popen[str]
    port: int
    lines: list[str]
    later: list[str] = field(default_factory=list)  # what it printed once serving
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def follow(self) -> None:
        """Keep reading its output on a thread of its own."""
        assert self.proc.stdout is not None
        stream = self.proc.stdout

        def pump() -> None:
            for line in stream:
                with self.arrived:
                    self.later.append(line.rstrip("\n"))
                    self.arrived.notify_all()

        threading.Thread(target=pump, daemon=True).start()

    def printed(self, needle: str, timeout: float = 10) -> bool:
        """Whether a line with `needle` comes within `timeout` seconds."""
        with self.arrived:
            return self.arrived.wait_for(
                lambda: any(needle in line for line in self.later), timeout
            )

    def request(
        self, method: str, path: str, body: object = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.decode()


@pytest.fixture(scope="module")
def deno_ready() -> None:
    """Deno fetches the server's one dependency (npm:yaml) once, before the timed runs."""
    assert DENO is not None, "deno is required"
    subprocess.run([DENO, "cache", str(IMAGE / "main.ts")], check=True, timeout=300, env=ENV)


@pytest.fixture
def serve(deno_ready: None) -> Iterator[object]:
    started: list[subprocess.Popen[str]] = []

    def start(workflow: Path, secrets: Path | None = None, extra: tuple[str, ...] = ()) -> Serving:
        port = free_port()
        proc = subprocess.Popen(
            engine_command(workflow, port, secrets, extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=ENV,
        )
        started.append(proc)
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # until the last start-up line (then it serves)
            lines.append(line.rstrip("\n"))
            if line.startswith("  GET  /health"):
                break
        else:
            raise AssertionError("the engine ended before serving:\n" + "\n".join(lines))
        served = Serving(proc, port, lines)
        served.follow()
        return served

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def copy(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    shutil.copytree(EXAMPLES / name, directory)
    return directory


def expected_start(served: Serving, directory: Path) -> list[str]:
    """The simulated engine's start-up lines, on the port the served engine listens on."""
    return [
        line.replace("http://localhost:8080", f"http://localhost:{served.port}")
        for line in simulated_start(directory)
    ]


def simulated_start(directory: Path) -> list[str]:
    files = {
        str(p.relative_to(directory)): p.read_text()
        for p in directory.rglob("*")
        if p.is_file() and (p.suffix == ".ts" or p.name == "workflow.yaml")
    }
    lines: list[str] = []
    for _wait in Engine(files, lines.append).boot():  # its timers elapse at once
        pass
    return lines


@needs_deno
@pytest.mark.parametrize("name", ["hello", "uptime-prober", "emoji-report"])
def test_start_up_lines_are_the_simulated_engine_s(tmp_path: Path, serve, name: str) -> None:  # type: ignore[no-untyped-def]
    directory = copy(tmp_path, name)
    served = serve(directory)
    expected = expected_start(served, directory)
    assert served.lines == expected


@needs_deno
def test_health_run_and_other_paths(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    served = serve(copy(tmp_path, "hello"))
    assert served.request("GET", "/health") == (200, {"status": "ok"})
    status, result = served.request("POST", "/run", {"name": "kind"})
    # the engine's answer (REFERENCE §2): every node's output, not the last stage's result
    assert status == 200
    assert (result["success"], result["outputs"], result["errors"]) == (
        True,
        {"greet": {"message": "Hello, kind!"}},
        {},
    )
    timing = result["timing"]
    assert set(timing) == {"startedAt", "completedAt", "durationMs", "nodeTimings"}
    assert set(timing["nodeTimings"]) == {"greet"}
    # an invalid body is read as {}; GET runs with {}
    for method, raw in (("POST", b"{not json"), ("GET", None)):
        status, result = served.request(method, "/run", raw=raw)
        assert status == 200 and result["outputs"] == {"greet": {"message": "Hello, world!"}}
    assert served.request("GET", "/nope") == (404, "Not Found")
    assert served.request("DELETE", "/run") == (404, "Not Found")
    assert served.printed("[greet] INFO greeting kind"), served.later


@needs_deno
def test_a_failing_run_answers_500(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    directory = copy(tmp_path, "hello")
    (directory / "nodes" / "greet.ts").write_text(
        'export default async function run() {\n  throw new Error("down");\n}\n'
    )
    served = serve(directory)
    status, body = served.request("POST", "/run", {})
    assert status == 500
    assert (body["success"], body["outputs"], body["errors"]) == (False, {}, {"greet": "down"})
    # the answer keeps the message; the log has the stack, down to the node's own line
    assert served.printed("[greet] ERROR Error: down")
    assert served.printed(f"at run (file://{directory}/nodes/greet.ts:2:9)"), served.later


@needs_deno
def test_secrets_as_the_engine_reads_them(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    directory = copy(tmp_path, "hello")
    (directory / "nodes" / "greet.ts").write_text(
        "export default async function run(ctx: any) { return ctx.secrets; }\n"
    )
    secrets = write_tree(tmp_path / "secrets", {"token": "abc\n", "slack": '{"url": "u"}'})
    status, body = serve(directory, secrets).request("POST", "/run", {})
    assert status == 200
    assert body["outputs"]["greet"] == {"token": {"value": "abc"}, "slack": {"url": "u"}}


@needs_deno
def test_stages_run_in_order_each_with_its_predecessor_s_result(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    directory = write_tree(
        tmp_path / "chain",
        {
            "workflow.yaml": (
                'name: chain\nversion: "1.0"\ntriggers: [{type: manual}]\n'
                "nodes:\n  a: {path: ./nodes/a.ts}\n  b: {path: ./nodes/b.ts}\n"
                "edges: [{from: a, to: b}]\n"
            ),
            "nodes/a.ts": "export default (_ctx: unknown, input: any) => ({ n: input.n + 1 });\n",
            "nodes/b.ts": "export default (_ctx: unknown, input: any) => ({ n: input.n * 10 });\n",
        },
    )
    status, body = serve(directory).request("POST", "/run", {"n": 1})
    assert status == 200 and body["outputs"] == {"a": {"n": 2}, "b": {"n": 20}}


def in_the_pod(lines: list[str], directory: Path) -> list[str]:
    """The lines as the pod would print them: the workflow mounted at /app/workflow."""
    return [line.replace(f"file://{directory}/", "file:///app/workflow/") for line in lines]


@needs_deno
@pytest.mark.usefixtures("deno_ready")
def test_crashes_pdwatch_explains(tmp_path: Path) -> None:
    situation = Situation("kind-dev", "pipedreamer-engine:standin", "default")
    cases = {
        'console.log("about to fail");\nthrow new Error("boom at load");\n': (
            "the engine failed in nodes/greet.ts:2:7 while loading it"
        ),
        'import { x } from "./lib/util.ts";\n': (
            "a node imports nodes/lib/util.ts, which is not in the deployed workflow"
        ),
    }
    for n, (source, what) in enumerate(cases.items()):
        directory = copy(tmp_path / str(n), "hello")
        (directory / "nodes" / "greet.ts").write_text(source)
        exited = run_to_exit(directory)
        assert exited.code == 1, exited.lines
        logs = tuple(in_the_pod(exited.lines, directory))
        found = explain(Failure("Error", "the engine exited with code 1", "p", logs), situation)
        assert found is not None and found.what == what, logs


@needs_deno
@pytest.mark.usefixtures("deno_ready")
def test_yaml_1_2_and_edges_required(tmp_path: Path) -> None:
    directory = copy(tmp_path, "hello")
    spec = directory / "workflow.yaml"
    spec.write_text(spec.read_text().replace('"1.0"', "1.10").replace("edges:", "old_edges:"))
    exited = run_to_exit(directory)
    assert exited.code == 1
    assert exited.lines[:2] == ["Pipedreamer Engine starting...", "Workflow: hello v1.1"]
    assert exited.lines[2] == (
        'Engine failed to start: Error: Workflow spec missing required field: "edges" '
        "(must be an array)"
    )


@needs_deno
@pytest.mark.usefixtures("deno_ready")
def test_top_level_awaits_as_deno_runs_them(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    """The simulated engine's model of a node that awaits at load, checked against Deno:
    a promise that never settles ends the engine; a timer holds the loading, then it serves."""
    never = copy(tmp_path / "never", "hello")
    (never / "nodes" / "greet.ts").write_text(
        'console.log("before");\nawait new Promise(() => {});\nexport default () => ({});\n'
    )
    exited = run_to_exit(never)
    simulated = simulated_start(never)
    assert exited.code == 1
    assert simulated[-1] == "error: Top-level await promise never resolved"
    assert exited.lines[: len(simulated)] == simulated

    timer = copy(tmp_path / "timer", "hello")
    (timer / "nodes" / "greet.ts").write_text(
        'console.log("before");\n'
        "await new Promise((resolve) => setTimeout(resolve, 200));\n"
        'console.log("after");\n'
        "export default () => ({});\n"
    )
    served = serve(timer)
    expected = expected_start(served, timer)
    assert served.lines == expected and "after" in expected


def test_the_kind_recipe_runs_the_real_cluster_mode_with_the_built_image() -> None:
    """.github/workflows/kind.yml cannot run here; what it names must at least agree with
    the test mode (tests/target.py) and the build script."""
    import re

    import yaml

    recipe = yaml.safe_load((IMAGE.parent / ".github" / "workflows" / "kind.yml").read_text())
    steps = recipe["jobs"]["kind"]["steps"]
    cluster = next(s for s in steps if "kind-action" in s.get("uses", ""))["with"]["cluster_name"]
    (env,) = [s["env"] for s in steps if "env" in s]
    assert set(env) == {"PDWATCH_TEST_KUBECONFIG", "PDWATCH_TEST_CONTEXT", "PDWATCH_TEST_IMAGE"}
    built = re.search(r'IMAGE="\$\{IMAGE:-([^}]+)\}"', (IMAGE / "build-and-load.sh").read_text())
    assert built is not None and env["PDWATCH_TEST_IMAGE"] == built.group(1)
    assert env["PDWATCH_TEST_CONTEXT"] == f"kind-{cluster}"
    runs = [s.get("run", "") for s in steps]
    assert f"engine-image/build-and-load.sh kind {cluster}" in runs
    assert runs[-1].startswith("python3 dev.py test")


def workflow_of(tmp_path: Path, edges: str, nodes: dict[str, str], config: str = "") -> Path:
    lines = "".join(f"  {n}: {{path: ./nodes/{n}.ts}}\n" for n in nodes)
    return write_tree(
        tmp_path / "wf",
        {
            "workflow.yaml": (
                f'name: wf\nversion: "1.0"\ntriggers: [{{type: manual}}]\nnodes:\n{lines}'
                f"edges: {edges}\n{config}"
            ),
            **{f"nodes/{n}.ts": source for n, source in nodes.items()},
        },
    )


PASS = "export default async (_ctx: unknown, input: unknown) => input;\n"


@needs_deno
def test_stages_are_printed_in_the_engine_s_order(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    """a→b, z→a2: stage 2 is [b, a2] (topological), as the simulated engine says too."""
    directory = workflow_of(
        tmp_path,
        "[{from: a, to: b}, {from: z, to: a2}]",
        dict.fromkeys(("a", "b", "z", "a2"), PASS),
    )
    served = serve(directory)
    assert "  Stage 2: [b, a2]" in served.lines
    expected = expected_start(served, directory)
    assert served.lines == expected


@needs_deno
def test_several_inputs_are_keyed_and_a_failed_stage_is_the_last(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    nodes = {
        "a": "export default async () => 1;\n",
        "b": "export default async () => 2;\n",
        "c": PASS,
        "bad": 'export default async () => { throw new Error("no"); };\n',
        "after": PASS,
    }
    edges = "[{from: b, to: c}, {from: a, to: c}, {from: bad, to: after}]"
    status, body = serve(workflow_of(tmp_path, edges, nodes)).request("POST", "/run", {})
    assert status == 500
    # c's input is keyed by its predecessors in edge order; stage 2 never ran
    assert body["outputs"] == {"a": 1, "b": 2}
    assert body["errors"] == {"bad": "no"}
    assert "c" not in body["timing"]["nodeTimings"] and "after" not in body["outputs"]
    nodes.pop("bad")
    status, body = serve(
        workflow_of(tmp_path / "ok", "[{from: b, to: c}, {from: a, to: c}]", nodes)
    ).request("POST", "/run", {})
    assert status == 200 and list(body["outputs"]["c"]) == ["b", "a"]


@needs_deno
def test_timeouts_and_retries_apply_per_attempt(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    """config.timeout per attempt, config.retries more attempts 100, 200 ms apart; the last
    attempt's error stands (a whole-run timeout before)."""
    slow_then_fast = (
        "let calls = 0;\n"
        "export default async () => {\n"
        "  calls += 1;\n"
        "  if (calls < 3) await new Promise((r) => setTimeout(r, 1500));\n"
        "  return calls;\n"
        "};\n"
    )
    directory = workflow_of(
        tmp_path, "[]", {"n": slow_then_fast}, "config: {timeout: 1s, retries: 2}\n"
    )
    status, body = serve(directory).request("POST", "/run", {})
    assert (status, body["outputs"]) == (200, {"n": 3}), body
    assert body["timing"]["nodeTimings"]["n"]["durationMs"] >= 2000 + 300  # 2 timeouts, 2 waits
    never = workflow_of(
        tmp_path / "never",
        "[]",
        {"n": "export default () => new Promise(() => {});\n"},
        "config: {timeout: 1s}\n",
    )
    status, body = serve(never).request("POST", "/run", {})
    assert (status, body["errors"]) == (500, {"n": 'Node "n" timed out after 1000ms'})


@needs_deno
@pytest.mark.usefixtures("deno_ready")
def test_a_node_without_a_default_function_stops_start_up(tmp_path: Path) -> None:
    directory = workflow_of(tmp_path, "[]", {"n": "export const run = () => 1;\n"})
    exited = run_to_exit(directory)
    assert exited.code == 1
    assert any(
        'Node at "./nodes/n.ts" must export a default async function. Got: undefined' in line
        for line in exited.lines
    ), exited.lines


@needs_deno
@pytest.mark.usefixtures("deno_ready")
def test_the_stand_in_type_checks() -> None:
    assert DENO is not None
    subprocess.run([DENO, "check", str(IMAGE / "main.ts")], check=True, timeout=300, env=ENV)


def refused_by_both(directory: Path) -> tuple[list[Any], list[str]]:
    """Render's errors for the workflow, checked to be there exactly when the engine,
    given it, exits at start; and what the engine printed."""
    from devloop.render import RenderOptions, render

    started, lines = engine_starts(directory)
    result = render(directory, RenderOptions())
    refused = [p for p in result if p.is_error] if isinstance(result, list) else []
    assert bool(refused) == (not started), (refused, lines)
    return refused, lines


def engine_starts(directory: Path) -> tuple[bool, list[str]]:
    """Whether the engine gets to serving this workflow (it prints its listening line), or
    exits at start; and what it printed."""
    proc = subprocess.Popen(
        engine_command(directory, free_port()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Workflow server listening"):
                return True, lines
        return False, lines
    finally:
        proc.kill()
        proc.wait()


@needs_deno
@pytest.mark.usefixtures("deno_ready")
@pytest.mark.parametrize(
    "source",
    [
        "export default async function run() {\n  return 1;\n}\n",
        "export default (ctx: unknown) => ctx;\n",
        "const run = async () => 1;\nexport default run;\n",
        "const f = async () => 1;\nexport { f as default };\n",
        "export default class Runner {}\n",
        "export default 42;\n",
        'export default "run";\n',
        "export default { run: () => 1 };\n",
        "export async function run() {\n  return 1;\n}\n",
        'console.log("no export at all");\n',
    ],
)
def test_render_refuses_a_node_exactly_when_the_engine_refuses_to_start(
    tmp_path: Path, source: str
) -> None:
    """The default-export check before deploy agrees with the engine itself: render
    refuses the node file exactly when the engine, given it, exits at start, and names the
    file (and the line, where there is one to fix)."""
    directory = workflow_of(tmp_path, "[]", {"n": source})
    refused, lines = refused_by_both(directory)
    if refused:
        (problem,) = refused
        assert problem.file == f"{directory}/nodes/n.ts"
        assert "default export" in problem.message and "engine refuses to start" in problem.message
        assert any("must export a default async function" in line for line in lines), lines
        if "function run" in source or "export default" in source:
            assert problem.line == 1


@needs_deno
def test_a_failed_outside_call_is_said_from_the_engine_s_own_answer(
    tmp_path: Path,
    serve,  # type: ignore[no-untyped-def]
) -> None:
    """Nodes whose outside calls fail as calls fail from a pod without a route (a host that
    cannot resolve, a port nothing listens on) and one that throws: the engine's answer,
    summarised by pdwatch, names each failed node, its error, and what it means."""
    from devloop.runresult import summarize

    closed = free_port()  # nothing listens there once the probe socket is closed
    fetch = "export default async () => (await fetch({url!r})).status;\n"
    directory = workflow_of(
        tmp_path,
        "[]",
        {
            "lookup": fetch.format(url="http://nothing.invalid/health"),
            "refused": fetch.format(url=f"http://127.0.0.1:{closed}/"),
            "thrower": 'export default async () => {\n  throw new Error("no greeting today");\n};',
        },
    )
    status, body = serve(directory).request("POST", "/run", {})
    assert status == 500 and set(body["errors"]) == {"lookup", "refused", "thrower"}, body
    lines = summarize(status, body)
    assert lines[0].startswith("ran 3 nodes in ") and lines[0].split(": ", 1)[1].startswith(
        "3 failed (HTTP 500"
    ), lines
    said = "\n".join(lines)
    assert "thrower: no greeting today" in said
    # Deno 2 says "fetch failed" and keeps the reason in the error's cause, which the
    # engine does not record: pdwatch says what it can
    assert "lookup: fetch failed\n  → an outside call (fetch) failed" in said
    assert "refused: fetch failed\n  → an outside call (fetch) failed" in said
    assert said.count("→") == 2, said  # a thrown error is no outside call


RUN = "export default async () => 1;\n"


@needs_deno
@pytest.mark.usefixtures("deno_ready")
@pytest.mark.parametrize(
    ("source", "said"),
    [
        ('import { x } from "./lib/x.ts";\n' + RUN, ""),
        ('import "./lib/x.ts";\nexport { x } from "./lib/x.ts";\n' + RUN, ""),
        ('import type { T } from "./lib/types.ts";\n' + RUN, ""),
        ('import { x } from "./lib/gone.ts";\n' + RUN, "no such file is deployed"),
        ('import { x } from "./lib/x";\n' + RUN, "did you mean ./lib/x.ts?"),
        ('export * from "./lib/y.ts";\n' + RUN, "(did you mean lib/x.ts?)"),
        ('import { z } from "../outside.ts";\n' + RUN, "outside nodes/"),
    ],
)
def test_render_refuses_an_import_exactly_when_the_engine_cannot_load_it(
    tmp_path: Path, source: str, said: str
) -> None:
    """A relative import of a file that is not deployed stops the engine at start; render
    says so first, with the line and column of the specifier. Checked against the engine
    itself for each kind of import (a type-only import is erased, so it loads)."""
    directory = workflow_of(tmp_path, "[]", {"n": source})
    # what is deployed (workflow.yaml and nodes/**.ts) is what the engine is given
    write_tree(directory, {"nodes/lib/x.ts": "export const x = 1;\n"})
    refused, lines = refused_by_both(directory)
    if refused:
        (problem,) = refused
        assert problem.file == f"{directory}/nodes/n.ts" and problem.line == 1, problem
        assert said in problem.message and "Module not found" in problem.message, problem
        assert any("Module not found" in line for line in lines), lines


# --- the Tentacular engine (--flavor tentacular, as pdwatch's node runs tentacular-engine) --

TENTACULAR = ("--flavor", "tentacular")
HOOKED = """\
name: hooked
version: "2.0"
contract:
  version: "1"
  dependencies:
    github:
      protocol: https
      host: api.github.com
      auth:
        type: bearer-token
        secret: github.token
triggers:
  - type: webhook
    name: on-push
    provider: github
    event: push
    actions: [opened]
nodes:
  look:
    path: ./nodes/look.ts
edges: []
"""
LOOK = """\
export default async function run(ctx: any, input: any) {
  const github = ctx.dependency("github");
  let missing = "";
  try { ctx.dependency("nope"); } catch (err) { missing = (err as Error).message; }
  ctx.log.info(`hook ${JSON.stringify(input._webhook ?? null)}`);
  const { host, port, secret, authType } = github;
  return { host, port, secret, authType, missing };
}
"""


def hooked(tmp_path: Path) -> tuple[Path, Path]:
    directory = write_tree(tmp_path / "hooked", {"workflow.yaml": HOOKED, "nodes/look.ts": LOOK})
    secrets = write_tree(
        tmp_path / "secrets", {"github": '{"token": "t0k", "webhook_secret": "s3cret"}'}
    )
    return directory, secrets


@needs_deno
def test_the_tentacular_engine_s_start_up_and_dependency(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    """TENTACULAR.md §7.1: its banner, the webhook secret said, the routes padded to 23
    columns with the webhook receiver; §7.6: ctx.dependency from the contract."""
    directory, secrets = hooked(tmp_path)
    served = serve(directory, secrets, TENTACULAR)
    assert served.lines[0] == "Tentacular Engine starting..."
    assert "  Webhook secret: configured" in served.lines
    assert served.lines[-3:] == [
        f"Workflow server listening on http://localhost:{served.port}",
        "  POST /run              — trigger workflow execution",
        "  GET  /health           — health check",
    ]
    assert served.printed("  GET  /health?detail=1  — telemetry snapshot")
    assert served.printed("  POST /webhook/github   — GitHub webhook receiver")
    status, body = served.request("POST", "/run", {})
    assert status == 200, body
    assert body["outputs"]["look"] == {
        "host": "api.github.com",
        "port": 443,
        "secret": "t0k",
        "authType": "bearer-token",
        "missing": 'Dependency "nope" not declared in contract. Add it to workflow.yaml '
        "contract.dependencies.",
    }
    status, detail = served.request("GET", "/health?detail=1")
    assert status == 200 and detail["status"] == "ok" and detail["inFlight"] == 0
    kinds = [e["type"] for e in detail["recentEvents"]]
    assert kinds == [
        "engine-start",
        "request-in",
        "node-start",
        "node-complete",
        "request-out",
    ]
    assert detail["totalEvents"] == 5 and detail["errorCount"] == 0
    assert detail["lastRunFailed"] is False


@needs_deno
def test_the_tentacular_engine_s_github_webhook(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    """TENTACULAR.md §2: POST /webhook/github, the signature checked, the first matching
    trigger answered at once and the workflow run with the payload and `_webhook`."""
    import hashlib
    import hmac

    directory, secrets = hooked(tmp_path)
    served = serve(directory, secrets, TENTACULAR)

    def deliver(payload: bytes, event: str, secret: bytes = b"s3cret") -> tuple[int, Any]:
        signature = "sha256=" + hmac.new(secret, payload, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{served.port}/webhook/github",
            data=payload,
            method="POST",
            headers={
                "X-Hub-Signature-256": signature,
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": "d-1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    opened = json.dumps({"action": "opened"}).encode()
    assert deliver(opened, "push", b"wrong") == (401, {"error": "Invalid signature"})
    assert deliver(opened, "issues") == (200, {"ok": True, "matched": False})
    closed = json.dumps({"action": "closed"}).encode()
    assert deliver(closed, "push") == (200, {"ok": True, "matched": False})
    assert deliver(b"{no", "push") == (400, {"error": "Invalid JSON payload"})
    assert deliver(opened, "push") == (200, {"ok": True, "matched": True, "delivery_id": "d-1"})
    assert served.printed(
        'hook {"provider":"github","event":"push","action":"opened","delivery_id":"d-1",'
        '"trigger":"on-push"}'
    )
    assert served.request("POST", "/webhook/gitlab", {}) == (
        400,
        {"error": "Unknown webhook provider: gitlab"},
    )


@needs_deno
def test_a_webhook_without_a_provider_stops_the_tentacular_engine(tmp_path: Path) -> None:
    directory, _ = hooked(tmp_path)
    spec = directory / "workflow.yaml"
    spec.write_text(spec.read_text().replace("    provider: github\n", "    path: /hook\n"))
    assert DENO is not None
    proc = subprocess.run(
        engine_command(directory, free_port(), extra=TENTACULAR),
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert proc.returncode == 1
    assert (
        "Engine failed to start: Error: Webhook trigger configuration error: All webhook "
        "triggers must have a provider (e.g. 'github')" in proc.stderr
    )
