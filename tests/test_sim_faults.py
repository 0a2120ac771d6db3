"""Fault hooks of the embedded cluster, its standalone process, and kubectl against it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from devloop.sim import EmbeddedCluster
from tests.helpers import write_tree
from tests.target import sim_only

pytestmark = sim_only("tests the embedded cluster itself")

EXAMPLES = Path(__file__).parent.parent / "examples"


def config_map(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}}


def test_fail_next_requests_with_a_status(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    cluster.fail_next(2, 503)
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            core.list_namespaced_config_map("default")
        assert info.value.status == 503
    assert core.list_namespaced_config_map("default").items == []


def test_latency_is_added_to_each_request(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    cluster.set_latency(0.3)
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:  # the client's retries
        core.list_namespaced_config_map("default", _request_timeout=0.1)
    assert isinstance(info.value.reason, urllib3.exceptions.ReadTimeoutError)
    cluster.set_latency(0)
    core.list_namespaced_config_map("default", _request_timeout=5)


def test_dropped_watch_breaks_the_stream(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """A dropped connection ends mid-response (no last chunk): the client sees a broken
    read long before the watch's 20 s timeout, and never reuses that connection."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", config_map("a"))
    events = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, "default", timeout_seconds=20
        ):
            events.append(event["type"])
            cluster.drop_streams()
    assert events == ["ADDED"]
    assert core.list_namespaced_config_map("default").items  # the next request is fine


def test_server_stop_and_start_on_the_same_port_keeps_state(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", config_map("kept"))
    port = cluster.port
    cluster.stop_server()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.list_namespaced_config_map("default", _request_timeout=2, _preload_content=True)
    cluster.start_server()
    assert cluster.port == port
    names = [c.metadata.name for c in core.list_namespaced_config_map("default").items]
    assert names == ["kept"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_standalone(kubeconfig: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devloop.sim", "--kubeconfig", str(kubeconfig), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once it serves
    assert f"http://127.0.0.1:{port}" in line, line
    return proc


def test_standalone_writes_kubeconfig_serves_and_restarts_empty(tmp_path: Path) -> None:
    kubeconfig, port = tmp_path / "kubeconfig", free_port()
    proc = start_standalone(kubeconfig, port)
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "pdwatch-embedded"
        assert config["contexts"][0]["context"]["namespace"] == "default"
        api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{port}"))
        client.CoreV1Api(api).create_namespaced_config_map("default", config_map("a"))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    proc = start_standalone(kubeconfig, port)  # same port: the same client works, state is new
    try:
        assert client.CoreV1Api(api).list_namespaced_config_map("default").items == []
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def kubectl(kubeconfig: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("kubectl", path=os.path.dirname(sys.executable)) or "kubectl"
    return subprocess.run(
        [binary, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_kubectl_apply_rollout_logs_delete(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    rendered = subprocess.run(
        [sys.executable, "-m", "devloop", str(EXAMPLES / "hello"), "--render"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifest = write_tree(tmp_path, {"hello.yaml": rendered}) / "hello.yaml"
    applied = kubectl(kubeconfig, "apply", "--server-side", "-f", str(manifest))
    assert applied.returncode == 0, applied.stderr
    assert "deployment.apps/hello serverside-applied" in applied.stdout
    status = kubectl(kubeconfig, "rollout", "status", "deployment/hello", "--timeout=20s")
    assert status.returncode == 0, status.stderr
    assert "successfully rolled out" in status.stdout
    restarted = kubectl(kubeconfig, "rollout", "restart", "deployment/hello")
    assert restarted.returncode == 0, restarted.stderr
    assert (
        kubectl(kubeconfig, "rollout", "status", "deployment/hello", "--timeout=20s").returncode
        == 0
    )
    rs = kubectl(kubeconfig, "get", "rs", "-o", "name")
    assert len(rs.stdout.split()) == 2, rs.stdout
    got = kubectl(kubeconfig, "get", "deployment", "hello", "-o", "yaml")
    assert yaml.safe_load(got.stdout)["spec"]["template"]["metadata"]["annotations"][
        "kubectl.kubernetes.io/restartedAt"
    ]
    follow = subprocess.Popen(
        [
            shutil.which("kubectl", path=os.path.dirname(sys.executable)) or "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "logs",
            "-f",
            "deployment/hello",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follow.stdout is not None
    first = follow.stdout.readline()
    assert first == "Pipedreamer Engine starting...\n"
    deleted = kubectl(kubeconfig, "delete", "-f", str(manifest))
    assert deleted.returncode == 0, deleted.stderr
    deadline = time.monotonic() + 20
    follow.wait(timeout=max(1.0, deadline - time.monotonic()))  # -f ends with the container
    assert follow.returncode == 0
    assert (
        kubectl(
            kubeconfig, "get", "deploy,cm,svc", "-l", "app.kubernetes.io/name=hello", "-o", "name"
        ).stdout
        == ""
    )
