"""Quitting works in every state of the daemon, as a process: SIGINT and SIGTERM end it
with exit code 0 whether it is rendering, applying, retrying against a cluster that went away,
following a rollout that does not finish, or tailing logs.

On Python 3.11, `asyncio.wait_for` swallowed a cancellation that arrived just as its
inner wait finished: the retry back-off's sleep was one, so a quit during retries left
the worker running and pdwatch alive for good. The bound below is a liveness check (it
would be forever), not a performance figure: `make bench` measures how fast quit is.
"""

from __future__ import annotations

import re
import shutil
import signal
import textwrap
import threading
import urllib.error
import urllib.request
from pathlib import Path
from queue import Queue

import pytest

from devloop.sim import EmbeddedCluster
from tests.helpers import STUCK_AT_LOAD, node_code
from tests.processes import Lines, start_pdwatch, stop

EXAMPLES = Path(__file__).parent.parent / "examples"
QUIT_BOUND_S = 8


def hello(tmp_path: Path) -> Path:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    return directory


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_quit_during_retry_back_off_with_the_cluster_gone(
    tmp_path: Path, cluster: EmbeddedCluster, sig: signal.Signals
) -> None:
    directory = hello(tmp_path)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui")
    try:
        lines = Lines(proc)
        lines.until("Ready in")
        cluster.stop_server()
        (directory / "nodes" / "greet.ts").write_text(node_code("v2"))
        lines.until("retry 2 in")  # the back-off sleep has run at least once
        proc.send_signal(sig)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
    finally:
        stop(proc)


def test_quit_while_applying_against_a_slow_cluster(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    directory = hello(tmp_path)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui")
    try:
        lines = Lines(proc)
        lines.until("Ready in")
        cluster.set_latency(30)  # every request now hangs far longer than the bound
        (directory / "nodes" / "greet.ts").write_text(node_code("v2"))
        lines.until("nodes/greet.ts changed")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
    finally:
        cluster.set_latency(0)
        stop(proc)


def test_quit_while_following_a_rollout_that_never_gets_ready(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    directory = hello(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui")
    try:
        lines = Lines(proc)
        lines.until(" started")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
    finally:
        stop(proc)


def test_quit_while_tailing_logs(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    directory = hello(tmp_path)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui")
    try:
        lines = Lines(proc)
        lines.until_all("] Pipedreamer Engine starting", "Ready in")  # the tail is open
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
    finally:
        stop(proc)


BLOCKING_RENDER = textwrap.dedent(
    """
    import sys, threading
    import devloop.loop
    from devloop.cli import entry

    real_render = devloop.loop.render

    def render(directory, options):
        if "block" in (directory / "nodes" / "greet.ts").read_text():
            print("rendering: blocked", flush=True)
            threading.Event().wait()  # a read that never returns (a hung network mount)
        return real_render(directory, options)

    devloop.loop.render = render
    sys.argv = ["pdwatch", *sys.argv[1:]]
    entry()
    """
)


def test_quit_while_rendering(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    """Rendering reads the workflow on a thread; a read that hangs (a network file system
    gone away) is injected, since no local file can be made to block a read that pdwatch
    opens (FIFOs and devices are refused before they are opened)."""
    directory = hello(tmp_path)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    script = tmp_path / "blocking_render.py"
    script.write_text(BLOCKING_RENDER)
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui", python=[script])
    try:
        lines = Lines(proc)
        lines.until("Ready in")
        (directory / "nodes" / "greet.ts").write_text(node_code("block"))
        lines.until("rendering: blocked")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
    finally:
        stop(proc)


IN_FLIGHT = (
    "let runs = 0;\n"
    "export default async function run() {\n"
    "  console.log(`run ${++runs} started`);\n"
    "  await new Promise((resolve) => setTimeout(resolve, 600_000));\n"
    "  return {};\n}\n"
)


def test_quit_with_requests_in_flight_through_the_url(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    """Requests to the local URL that the engine has not answered: quitting answers them
    503 with the reason and ends pdwatch (the engine's own 30 s node timeout not waited)."""
    directory = hello(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(IN_FLIGHT)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--no-tui")
    try:
        lines = Lines(proc)
        url = re.search(r"http://127\.0\.0\.1:\d+", lines.until("the workflow answers at"))
        assert url is not None
        lines.until("Ready in")
        answers: Queue[tuple[int, str]] = Queue()

        def post() -> None:
            request = urllib.request.Request(f"{url[0]}/run", data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=QUIT_BOUND_S * 2) as answer:
                    answers.put((answer.status, answer.read().decode()))
            except urllib.error.HTTPError as error:
                answers.put((error.code, error.read().decode()))
            except OSError as error:
                answers.put((0, str(error)))

        posts = [threading.Thread(target=post, daemon=True) for _ in range(3)]
        for thread in posts:
            thread.start()
        lines.until(f"run {len(posts)} started")  # each is in the engine's hands
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=QUIT_BOUND_S) == 0, "\n".join(lines.rest())
        got = [answers.get(timeout=QUIT_BOUND_S) for _ in posts]
        assert got == [(503, '{"error": "pdwatch quit while the request was in flight"}\n')] * 3
    finally:
        stop(proc)
