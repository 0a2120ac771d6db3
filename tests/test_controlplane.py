"""Kubernetes' own control plane (devloop.controlplane) with pdwatch's node: what kubectl
and pdwatch see of it. Needs Go (the control plane is built from its modules); skipped
with the reason where there is none."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devloop.controlplane import build
from devloop.controlplane.build import RELEASE
from devloop.controlplane.cluster import CONTEXT, NODE_NAME, ControlPlane, Running
from devloop.sim.settings import SimSettings

pytestmark = pytest.mark.skipif(
    build.go_binary() is None,
    reason=f"no Go toolchain to build the control plane: {build.HOW_TO_GET_GO}",
)

KUBECTL = str(Path(sys.executable).parent / "kubectl")


@pytest.fixture
def plane(control_plane: ControlPlane) -> ControlPlane:
    return control_plane


def kubectl(
    plane: ControlPlane, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert plane.kubeconfig_path is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(plane.kubeconfig_path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_version_is_the_pinned_release(plane: ControlPlane) -> None:
    version = json.loads(kubectl(plane, "get", "--raw", "/version").stdout)
    assert version["gitVersion"] == RELEASE
    assert (version["major"], version["minor"]) == ("1", "37")


def test_the_context_looks_like_kinds(plane: ControlPlane) -> None:
    assert kubectl(plane, "config", "current-context").stdout.strip() == CONTEXT
    assert CONTEXT.startswith("kind-")


def test_kubectl_get_nodes_shows_the_node_ready(plane: ControlPlane) -> None:
    def ready() -> bool:
        out = kubectl(plane, "get", "nodes", "-o", "json").stdout
        nodes = json.loads(out)["items"] if out else []
        return any(
            n["metadata"]["name"] == NODE_NAME
            and any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
            and not n["spec"].get("taints")  # the lifecycle controller lifted not-ready
            for n in nodes
        )

    wait_for("the node Ready without taints", ready)
    table = kubectl(plane, "get", "nodes").stdout
    assert NODE_NAME in table and " Ready " in table and "v1.37.2" in table
    lease = kubectl(plane, "get", "lease", "-n", "kube-node-lease", NODE_NAME, "-o", "json")
    assert json.loads(lease.stdout)["spec"]["holderIdentity"] == NODE_NAME


def test_a_workflow_deploys_and_kubectl_follows_it(plane: ControlPlane, tmp_path: Path) -> None:
    """pdwatch --once against the real API server; then rollout status, logs -f, describe
    and the Service proxy as a user would type them."""
    directory = tmp_path / "hello"
    shutil.copytree(Path(__file__).parent.parent / "examples" / "hello", directory)
    assert plane.kubeconfig_path is not None
    once = subprocess.run(
        [
            str(Path(sys.executable).parent / "pdwatch"),
            str(directory),
            "--once",
            "--kubeconfig",
            str(plane.kubeconfig_path),
            "--runtime-class",
            "",
            "--no-tui",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert once.returncode == 0, once.stdout + once.stderr
    assert "Kubernetes API reachable (v1.37.2)" in once.stdout
    status = kubectl(plane, "rollout", "status", "deployment/hello", "--timeout=60s")
    assert status.returncode == 0 and "successfully rolled out" in status.stdout
    follow = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(plane.kubeconfig_path), "logs", "-f", "deployment/hello"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        first = [follow.stdout.readline().rstrip("\n") for _ in range(2)]
        assert first == ["Pipedreamer Engine starting...", "Workflow: hello v1.0"]
        assert follow.poll() is None  # still following
    finally:
        follow.kill()
        follow.wait()
    describe = kubectl(plane, "describe", "pod", "-l", "app.kubernetes.io/name=hello").stdout
    for needle in (
        "default-scheduler",
        "Successfully assigned default/hello-",
        "Started container engine",
    ):
        assert needle in describe
    answer = kubectl(
        plane, "get", "--raw", "/api/v1/namespaces/default/services/hello:8080/proxy/health"
    )
    assert answer.returncode == 0 and json.loads(answer.stdout) == {"status": "ok"}


def _namespaces() -> set[str]:
    if shutil.which("ip") is None:
        return set()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.startswith("pdwatch-")}


def test_a_stopped_control_plane_leaves_no_process(tmp_path: Path) -> None:
    before = _namespaces()
    with Running(tmp_path / "kubeconfig", SimSettings(time_scale=0.05)) as running:
        pids = [p.popen.pid for p in running.processes]
        directory = running.directory
        assert len(pids) == 4
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    assert not directory.exists()
    leftovers = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True)
    assert leftovers.stdout == ""
    assert _namespaces() <= before  # the node's pod network is gone with it


@pytest.mark.second_pass
def test_a_component_whose_port_is_taken_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port found free can be taken before the component binds it. Seen: the controller
    manager exited on "address already in use" while the control plane was said to be
    up, and no namespace got its default ServiceAccount. Here its first port is held."""
    import socket

    from devloop.controlplane import cluster

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    real, calls = cluster.free_port, []

    def ports() -> int:
        calls.append(1)
        # etcd, its peer and the API server get free ones; the controller manager the held
        return held.getsockname()[1] if len(calls) == 4 else real()

    monkeypatch.setattr(cluster, "free_port", ports)
    try:
        with Running(tmp_path / "kubeconfig", SimSettings(time_scale=0.05)) as running:
            manager = next(p for p in running.processes if p.name == "kube-controller-manager")
            assert manager.popen.poll() is None
            assert "address already in use" not in manager.log.read_text(errors="replace")
            kubeconfig = str(tmp_path / "kubeconfig")
            made = subprocess.run(
                [KUBECTL, "--kubeconfig", kubeconfig, "create", "namespace", "held-port"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert made.returncode == 0, made.stderr
            # the controller manager runs: the namespace gets its ServiceAccount
            waited = subprocess.run(
                [
                    KUBECTL,
                    "--kubeconfig",
                    kubeconfig,
                    "-n",
                    "held-port",
                    "wait",
                    "--for=create",
                    "serviceaccount/default",
                    "--timeout=60s",
                ],
                capture_output=True,
                text=True,
                timeout=90,
            )
            assert waited.returncode == 0, waited.stderr
    finally:
        held.close()
