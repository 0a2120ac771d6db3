"""`pdwatch DIR --embedded` as a process: plain output without a terminal, an edit goes
live, SIGTERM ends it cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kubernetes import client

from devloop.sim import EmbeddedCluster, Rule
from tests.helpers import crashing_node, node_code
from tests.processes import Lines, start_pdwatch, stop
from tests.target import sim_only

EXAMPLES = Path(__file__).parent.parent / "examples"


@sim_only("pdwatch --embedded starts a cluster of its own")
def test_daemon_plain_output_edit_and_sigterm(tmp_path: Path) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devloop", str(directory), "--embedded"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = Lines(proc)
        lines.until("✓ permissions to deploy and follow the workflow")
        lines.until("start → applied in")
        (directory / "nodes" / "greet.ts").write_text(node_code("from the edit"))
        timeline = lines.until("nodes/greet.ts changed → applied in")
        assert " Ready in " in timeline and "from save to Ready" in timeline
        log = next(line for line in lines.seen if line.endswith("] from the edit"))
        assert log.split()[1].startswith("[hello-")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        stop(proc)


def test_the_plain_daemon_says_its_url_and_it_answers(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str
) -> None:
    """`pdwatch DIR` serves the workflow at a local URL (issue 28), said in its first
    lines; a request there reaches the engine of the pod being served."""
    import json
    import re
    import urllib.request

    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc", namespace=namespace)
    proc = start_pdwatch(directory, "--no-tui", "--kubeconfig", kubeconfig)
    try:
        lines = Lines(proc)
        said = lines.until("the workflow answers at http://127.0.0.1:")
        url = re.search(r"http://127\.0\.0\.1:\d+", said)
        assert url is not None, said
        lines.until("start → applied in")
        request = urllib.request.Request(f"{url.group(0)}/run", data=b'{"name": "url"}')
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.loads(answer.read())
        assert body["outputs"] == {"greet": {"message": "Hello, url!"}}
    finally:
        stop(proc)


def test_daemon_refuses_a_missing_directory(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", str(tmp_path / "nope"), "--embedded"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "does not exist; give a workflow directory" in proc.stderr


def start_with_cleanup(
    tmp_path: Path, cluster: EmbeddedCluster, before: Callable[[Path], None] | None = None
) -> tuple[Path, subprocess.Popen[str]]:
    """pdwatch --cleanup-on-exit on a copy of examples/hello (changed by `before`)."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    if before is not None:
        before(directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    return directory, start_pdwatch(directory, "--kubeconfig", kubeconfig, "--cleanup-on-exit")


def test_cleanup_on_exit_removes_the_workflow(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    _, proc = start_with_cleanup(tmp_path, cluster)
    try:
        lines = Lines(proc)
        lines.until("start → applied in")
        apps = client.AppsV1Api(api_client)
        assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == [
            "hello"
        ]
        proc.send_signal(signal.SIGTERM)
        lines.until("cleaned up: Deployment/hello, Service/hello, ConfigMap/hello-code")
        assert proc.wait(timeout=20) == 0
        assert apps.list_namespaced_deployment(namespace).items == []
        names = [
            c.metadata.name
            for c in client.CoreV1Api(api_client).list_namespaced_config_map(namespace).items
        ]
        assert "hello-code" not in names
    finally:
        stop(proc)


def test_cleanup_on_exit_runs_on_sighup_too(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """Closing the terminal or the SSH session sends SIGHUP: the cleanup must run."""
    _, proc = start_with_cleanup(tmp_path, cluster)
    try:
        lines = Lines(proc)
        lines.until("start → applied in")
        proc.send_signal(signal.SIGHUP)
        lines.until("cleaned up: Deployment/hello")
        assert proc.wait(timeout=20) == 0
        assert client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items == []
    finally:
        stop(proc)


def config_maps(api_client: client.ApiClient, namespace: str) -> list[str]:
    items = client.CoreV1Api(api_client).list_namespaced_config_map(namespace).items
    return sorted(c.metadata.name for c in items if c.metadata.name != "kube-root-ca.crt")


def test_cleanup_on_exit_after_a_failed_first_rollout_and_a_rename(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """The first rollout fails (the node throws at load), then the workflow is renamed:
    the rename is said, and the quit removes both names' objects, code copies and history
    included, as --down does (issue 24 §2, §8)."""

    def broken(directory: Path) -> None:
        (directory / "nodes" / "greet.ts").write_text(crashing_node("BROKEN-V1"))

    directory, proc = start_with_cleanup(tmp_path, cluster, broken)
    try:
        lines = Lines(proc)
        lines.until("rollout failed", timeout=60)
        workflow = directory / "workflow.yaml"
        workflow.write_text(workflow.read_text().replace("name: hello", "name: hello-two", 1))
        lines.until("the workflow is now named 'hello-two': the deploy of 'hello' stays")
        proc.send_signal(signal.SIGTERM)
        lines.until("cleaned up: Deployment/hello, Service/hello, ConfigMap/hello-code", timeout=30)
        assert proc.wait(timeout=20) == 0
        assert client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items == []
        assert config_maps(api_client, namespace) == []
    finally:
        stop(proc)


def test_cleanup_on_exit_against_a_slow_api_server_says_what_it_left(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """Deletions that get no answer: the cleanup gives up within its bound, before the quit
    watchdog, and says what it deleted and what it left (issue 24 §8: exit 1, no word)."""
    _, proc = start_with_cleanup(tmp_path, cluster)
    try:
        lines = Lines(proc)
        lines.until("start → applied in")
        cluster.add_fault(Rule(method="DELETE", skip=1, count=1000, status=0))
        proc.send_signal(signal.SIGTERM)
        left = lines.until("cleanup stopped", timeout=30)
        assert "no answer within 10 s" in left
        assert "deleted Deployment/hello;" in left
        assert "the rest of hello is left in the cluster (pdwatch DIR --down deletes it)" in left
        assert proc.wait(timeout=20) == 0
    finally:
        cluster.clear_faults()
        stop(proc)
