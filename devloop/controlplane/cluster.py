"""Kubernetes' own control plane on loopback, as envtest and kwok run it: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler (built from their Go modules,
devloop.controlplane.build), started with what a kind cluster enables (certificates,
service-account keys, the default admission plugins plus NodeRestriction, RBAC and the Node
authorizer), a kubeconfig with a kind-like context, and pdwatch's node (devloop.node)
registered against it.

Every process is started in its own process group and asked to die with this one
(PR_SET_PDEATHSIG), so none outlives it even when it is killed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devloop.controlplane import build, pki

CONTEXT = "kind-pdwatch"
NODE_NAME = "pdwatch-control-plane"  # kind names its node <cluster>-control-plane
SERVICE_RANGE = "10.96.0.0/16"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: its own process group, SIGKILL when the parent dies."""
    os.setpgrp()
    with contextlib.suppress(OSError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(server: str, ca: Path, client: pki.Pair, context: str, user: str) -> dict[str, Any]:
    """A kubeconfig with its certificates inline, so it stands on its own."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {"server": server, "certificate-authority-data": _data(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _data(client.cert),
                    "client-key-data": _data(client.key),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
        "current-context": context,
    }


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class Exited(RuntimeError):
    """A component of the control plane ended; its log's end says why."""

    def __init__(self, process: Process) -> None:
        tail = process.log.read_text(errors="replace")[-3000:]
        super().__init__(f"{process.name} exited with code {process.popen.returncode}:\n{tail}")
        self.process = process


@dataclass
class ControlPlane:
    """`start()` it, use `kubeconfig` (context kind-pdwatch), `stop()` it."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pdwatch-cp-")))
    processes: list[Process] = field(default_factory=list)
    kubeconfig_path: Path | None = None
    server: str = ""
    started_in: float = 0.0
    _own_directory: bool = True

    def start(self, kubeconfig_path: Path | None = None, say: Any = None) -> Path:
        """Build (when needed) and start everything; wait until the API server is ready
        and its bootstrap is done. Returns the admin kubeconfig's path."""
        binaries = build.ensure_built(say)
        began = time.monotonic()
        try:
            self._start(binaries, kubeconfig_path)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        assert self.kubeconfig_path is not None
        return self.kubeconfig_path

    def _start(self, binaries: dict[str, Path], kubeconfig_path: Path | None) -> None:
        d = self.directory
        pkidir = d / "pki"
        ca = pki.Authority(pkidir)
        api_port, etcd_port, peer_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        serving = ca.issue(
            "apiserver",
            "kube-apiserver",
            server_names=(
                "127.0.0.1",
                "localhost",
                "10.96.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            client=False,
        )
        kubelet_client = ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("kubeadm:cluster-admins",)
        )
        sa = pki.service_account_keys(pkidir)
        admin = ca.issue("admin", "kubernetes-admin", ("system:masters",))
        manager = ca.issue("controller-manager", "system:kube-controller-manager")
        scheduler = ca.issue("scheduler", "system:kube-scheduler")
        self.node_client = ca.issue("node", f"system:node:{NODE_NAME}", ("system:nodes",))
        self.kubelet_serving = ca.issue(
            "kubelet", NODE_NAME, server_names=("127.0.0.1", NODE_NAME), client=False
        )
        self.ca = ca.pair
        configs = {
            name: write_yaml(
                d / f"{name}.kubeconfig", kubeconfig(self.server, ca.pair.cert, pair, CONTEXT, user)
            )
            for name, pair, user in (
                ("admin", admin, f"{CONTEXT}"),
                ("controller-manager", manager, "system:kube-controller-manager"),
                ("scheduler", scheduler, "system:kube-scheduler"),
                ("node", self.node_client, f"system:node:{NODE_NAME}"),
            )
        }
        self.node_kubeconfig = configs["node"]
        self.admin_kubeconfig = configs["admin"]
        self.kubeconfig_path = kubeconfig_path or d / "kubeconfig"
        if kubeconfig_path is not None:
            kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(configs["admin"], self.kubeconfig_path)
        self.kubeconfig_path.chmod(0o600)

        self._spawn(
            "etcd",
            [
                str(binaries["etcd"]),
                "--name=pdwatch",
                f"--data-dir={d / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=pdwatch=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",  # a throw-away test store: no fsync per write
                "--log-level=warn",
            ],
        )
        self._wait_http(f"http://127.0.0.1:{etcd_port}/health", "etcd", 30)
        self._spawn(
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                "--advertise-address=127.0.0.1",
                # the `kubernetes` Service's endpoint would be the advertise address, which
                # the reconciler refuses on loopback: no reconciler (as envtest runs it)
                "--endpoint-reconciler-type=none",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--client-ca-file={ca.pair.cert}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                "--kubelet-preferred-address-types=InternalIP",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                f"--service-cluster-ip-range={SERVICE_RANGE}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=0",
            ],
        )
        self._wait_ready(admin, 90)
        self._spawn_serving(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={configs['controller-manager']}",
                f"--authentication-kubeconfig={configs['controller-manager']}",
                f"--authorization-kubeconfig={configs['controller-manager']}",
                "--bind-address=127.0.0.1",
                f"--client-ca-file={ca.pair.cert}",
                f"--root-ca-file={ca.pair.cert}",
                f"--cluster-signing-cert-file={ca.pair.cert}",
                f"--cluster-signing-key-file={ca.pair.key}",
                f"--service-account-private-key-file={sa.key}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                "--cluster-name=pdwatch",
                f"--service-cluster-ip-range={SERVICE_RANGE}",
                "--controllers=*,bootstrapsigner,tokencleaner",
                "--profiling=false",
            ],
        )
        self._spawn_serving(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={configs['scheduler']}",
                f"--authentication-kubeconfig={configs['scheduler']}",
                f"--authorization-kubeconfig={configs['scheduler']}",
                "--bind-address=127.0.0.1",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                cwd=self.directory,
            )
        self.processes.append(Process(name, popen, log))

    def _spawn_serving(self, name: str, argv: list[str], tries: int = 3) -> None:
        """A component that serves /healthz on a port of its own, started until it
        answers there. A port found free here can be taken before the component binds it
        (seen: the controller manager exited on "address already in use" while the
        cluster was said to be up, and no namespace got its ServiceAccount): a component
        that exits before it answers is started again on another port."""
        for attempt in range(1, tries + 1):
            port = free_port()
            self._spawn(name, [*argv, f"--secure-port={port}"])
            try:
                # its own self-signed certificate: the answer matters, not who gives it
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                self._wait_http(f"https://127.0.0.1:{port}/healthz", name, 60, context)
                return
            except Exited as exc:
                if exc.process.name != name or attempt == tries:
                    raise
                self.processes.remove(exc.process)

    def _check_alive(self) -> None:
        for process in self.processes:
            if process.popen.poll() is not None:
                raise Exited(process)

    def _wait_http(
        self, url: str, what: str, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2, context=context) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not answer {url} in {timeout:.0f} s")

    def _wait_ready(self, admin: pki.Pair, timeout: float) -> None:
        """/readyz answers ok once the API server's post-start hooks are done (RBAC
        bootstrap roles, the default namespaces, priority classes)."""
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.ca.cert))
        context.load_cert_chain(str(admin.cert), str(admin.key))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(
                    f"{self.server}/readyz", timeout=2, context=context
                ) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"kube-apiserver was not ready in {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM to each process group in turn, newest first, each waited for before the
        next (SIGKILL after 10 s): the scheduler and the controllers end while the API
        server still answers them, the API server while etcd still does. Signalled all at
        once, the scheduler or the API server often hung in its shutdown until the SIGKILL
        (seen in 4 of 5 stops: 10 s at the end of every test session)."""
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.popen.pid, signal.SIGTERM)
            try:
                process.popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
        self.processes.clear()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


async def grant_node(plane: ControlPlane) -> None:
    """What the node needs beyond the Node authorizer: reading its machine's ConfigMap
    (devloop.node.machine; the Node authorizer lets a node read only the ConfigMaps its
    pods mount), and what kube-proxy reads (the node is also the pods' network: a cron
    trigger's curl finds a Service's endpoints in its EndpointSlices), as kubeadm binds
    kube-proxy's account to system:node-proxier."""
    from devloop.node import machine
    from devloop.node.rest import ApiStatus, Rest

    subjects = [
        {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "User",
            "name": f"system:node:{NODE_NAME}",
        }
    ]
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    machine_rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    ]
    writes = [
        (
            f"{rbac}/namespaces/{machine.NAMESPACE}/roles",
            {"metadata": {"name": machine.NAME}, "rules": machine_rules},
        ),
        (
            f"{rbac}/namespaces/{machine.NAMESPACE}/rolebindings",
            {
                "metadata": {"name": machine.NAME},
                "subjects": subjects,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": machine.NAME,
                },
            },
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "metadata": {"name": "pdwatch-node-proxier"},
                "subjects": subjects,
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:node-proxier",
                },
            },
        ),
    ]
    admin = Rest.from_kubeconfig(plane.admin_kubeconfig)
    try:
        for path, body in writes:
            try:
                await admin.request("POST", path, body)
            except ApiStatus as exc:
                if exc.code != 409:
                    raise
    finally:
        await admin.close()


async def run_node(
    plane: ControlPlane,
    stop: asyncio.Event,
    settings: Any = None,
    registered: Callable[[], None] = lambda: None,
) -> None:
    """pdwatch's node against the control plane until `stop` is set; `registered()` once
    its Node is there and Ready (what a user can use)."""
    from devloop.node.node import Node
    from devloop.node.podnet import PodNetwork
    from devloop.node.rest import Rest

    await grant_node(plane)
    network = PodNetwork.create()
    node = Node(
        Rest.from_kubeconfig(plane.node_kubeconfig),
        NODE_NAME,
        settings,
        network=network,
        serving=(plane.kubelet_serving.cert, plane.kubelet_serving.key),
        client_ca=plane.ca.cert,
    )
    try:
        await node.start()
        registered()
        await stop.wait()
    finally:
        await node.stop()
        network.close()


class Running:
    """The control plane and its node in the background (a thread runs the node's event
    loop): `with Running() as plane:` — what the tests and the benchmarks use."""

    def __init__(self, kubeconfig_path: Path | None = None, settings: Any = None) -> None:
        self.plane = ControlPlane()
        self.kubeconfig_path = kubeconfig_path
        self.settings = settings
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._failed: list[BaseException] = []

    def __enter__(self) -> ControlPlane:
        self.plane.start(self.kubeconfig_path)
        started = threading.Event()

        def serve() -> None:
            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
                started.set()
                await run_node(self.plane, self._stop, self.settings)

            try:
                asyncio.run(main())
            except BaseException as exc:  # shown by __exit__
                self._failed.append(exc)
                started.set()

        self._thread = threading.Thread(target=serve, name="pdwatch-node", daemon=True)
        self._thread.start()
        started.wait()
        return self.plane

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
        self.plane.stop()
        if self._failed:
            raise self._failed[0]
