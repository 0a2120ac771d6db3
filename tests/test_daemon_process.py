"""`pdwatch DIR --embedded` as a process: plain output without a terminal, an edit goes
live, SIGTERM ends it cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from devloop.sim import EmbeddedCluster
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
        (directory / "nodes" / "greet.ts").write_text('console.log("from the edit");\n')
        timeline = lines.until("nodes/greet.ts changed → applied in")
        assert " Ready in " in timeline and "from save to Ready" in timeline
        log = next(line for line in lines.seen if line.endswith("] from the edit"))
        assert log.split()[1].startswith("[hello-")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
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


def test_cleanup_on_exit_removes_the_workflow(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--cleanup-on-exit")
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
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--cleanup-on-exit")
    try:
        lines = Lines(proc)
        lines.until("start → applied in")
        proc.send_signal(signal.SIGHUP)
        lines.until("cleaned up: Deployment/hello")
        assert proc.wait(timeout=20) == 0
        assert client.AppsV1Api(api_client).list_namespaced_deployment(namespace).items == []
    finally:
        stop(proc)
