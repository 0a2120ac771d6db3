"""The engine container as a real Deno process (issue 25, first part): the node's part that
runs the stand-in engine with a pod's volumes, on the pod's address, its output as the
container log and its exit code as the container's. Driven here without an API server."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from devloop.node.denoengine import DenoEngine, find_deno
from devloop.node.logs import ContainerLog
from devloop.node.podnet import PodNetwork
from tests.target import patience

EXAMPLES = Path(__file__).parent.parent / "examples"
DENO = find_deno()
pytestmark = pytest.mark.skipif(DENO is None, reason="deno is a dev dependency")


def volume(example: str) -> dict[str, str]:
    root = EXAMPLES / example
    return {
        str(p.relative_to(root)): p.read_text()
        for p in root.rglob("*")
        if p.is_file() and (p.name == "workflow.yaml" or p.suffix == ".ts")
    }


@pytest.fixture
async def network() -> AsyncIterator[PodNetwork]:
    net = PodNetwork.create()
    yield net
    net.close()


def get(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


async def until_line(log: ContainerLog, wanted: Callable[[str], bool]) -> None:
    """Until the container prints a line `wanted` says yes to (its log wakes each waiter);
    a cold Deno fetches npm:yaml first."""

    async def watch() -> None:
        while not any(wanted(line.text) for line in log.lines):
            assert not log.done, [line.text for line in log.lines]
            await log.wait(len(log.lines))

    try:
        await asyncio.wait_for(watch(), patience(60))
    except TimeoutError:
        raise AssertionError([line.text for line in log.lines]) from None


async def until_health(engine: DenoEngine, address: str, port: int) -> None:
    """Until the engine says it listens; then its /health answers."""
    await until_line(engine.log, lambda text: text.startswith("Workflow server listening"))
    assert (await asyncio.to_thread(get, f"http://{address}:{port}/health"))[0] == 200


async def test_the_engine_runs_the_workflow_for_real(network: PodNetwork) -> None:
    """hello's node, run by the stand-in engine: its start-up lines and its own log line
    in the container log, /health, and /run answering with what the node computed."""
    assert DENO is not None
    address = network.allocate()
    log = ContainerLog()
    engine = DenoEngine(volume("hello"), {}, log, network, address, 8080, DENO)
    await engine.start()
    try:
        await until_health(engine, address, 8080)
        status, body = await asyncio.to_thread(
            get, f"http://{address}:8080/run", json.dumps({"name": "Deno"}).encode()
        )
        assert status == 200, body
        texts = [line.text for line in log.lines]
        assert texts[0] == "Pipedreamer Engine starting..."
        assert "Hello, Deno!" in body.decode(), body
    finally:
        exit_ = await engine.stop(grace=5)
    assert exit_ is not None and exit_.code in (143, 0)  # SIGTERM: the engine has no handler


async def test_a_node_that_throws_at_load_exits_1_with_its_stack_trace(
    network: PodNetwork,
) -> None:
    assert DENO is not None
    files = volume("hello")
    files["nodes/greet.ts"] = 'throw new Error("BROKEN-AT-LOAD");\n'
    log = ContainerLog()
    engine = DenoEngine(files, {}, log, network, network.allocate(), 8080, DENO)
    await engine.start()
    exit_ = await asyncio.wait_for(engine.exited(), patience(60))
    await engine.stop()
    texts = [line.text for line in log.lines]
    assert exit_.code == 1, texts
    assert any("BROKEN-AT-LOAD" in t for t in texts), texts
    assert any("nodes/greet.ts:1:7" in t for t in texts), texts


async def test_stop_kills_an_engine_that_ignores_sigterm_after_the_grace_period(
    network: PodNetwork,
) -> None:
    assert DENO is not None
    files = volume("hello")
    files["nodes/greet.ts"] = (
        'Deno.addSignalListener("SIGTERM", () => console.log("ignoring SIGTERM"));\n'
        'console.log("loaded");\n'
        "export default async function run() { return {}; }\n"
    )
    log = ContainerLog()
    engine = DenoEngine(files, {}, log, network, network.allocate(), 8080, DENO)
    await engine.start()
    await until_line(log, lambda text: text == "loaded")
    exit_ = await engine.stop(grace=0.5)
    assert exit_ is not None and exit_.code == 137  # SIGKILL after the grace period
    assert any(line.text == "ignoring SIGTERM" for line in log.lines)
    assert not Path(engine._dir).exists()


def test_deno_is_here() -> None:
    assert DENO is not None and shutil.which(DENO) is not None


def test_no_engine_outlives_a_killed_pdwatch(tmp_path: Path) -> None:
    """pdwatch --embedded killed with SIGKILL (no cleanup runs): the engine processes of
    its embedded cluster's pods end with it (PR_SET_PDEATHSIG), none is left behind."""
    import shutil

    import psutil

    from tests.processes import Lines, start_pdwatch, stop

    directory = tmp_path / "hello"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "hello", directory)
    proc = start_pdwatch(directory, "--embedded", "--no-tui")
    try:
        Lines(proc).until("Ready in", timeout=60)
        engines = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if "deno" in p.name()
        ]
        assert engines, "the pod's engine is a process of pdwatch's embedded cluster"
    finally:
        stop(proc)  # SIGKILL
    _gone, alive = psutil.wait_procs(engines, timeout=30)
    assert not alive, alive


def test_the_engine_s_dependency_is_cached_before_the_first_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a fresh machine (an empty Deno cache) the stand-in's npm dependency is fetched
    before the first engine starts, not while its probes run."""
    from devloop.node import denoengine

    assert DENO is not None
    monkeypatch.setenv("DENO_DIR", str(tmp_path / "deno"))
    monkeypatch.setattr(denoengine, "_cached", set())
    denoengine.ensure_cached(DENO)
    assert list((tmp_path / "deno").rglob("yaml*")), "npm:yaml is not in the fresh cache"
    assert denoengine._cached == {DENO}
