"""The real-cluster mode's fault proxy (tests/faultproxy.py), in front of an embedded
cluster: it forwards as given, injects the faults the tests ask for, and keeps a test in
its namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devloop.sim import EmbeddedCluster, Rule, SimSettings
from tests.faultproxy import FaultProxy, outside, upstream_configuration
from tests.target import sim_only

IN_FRONT = sim_only("puts the proxy in front of an embedded cluster of its own")


@pytest.mark.parametrize(
    ("method", "path", "body", "refused"),
    [
        ("GET", "/api/v1/namespaces/t1/pods", b"", False),
        ("PATCH", "/apis/apps/v1/namespaces/t1/deployments/x", b"", False),
        ("DELETE", "/api/v1/namespaces/t1-going", b"", False),  # the test's own
        ("GET", "/api/v1/namespaces/default", b"", False),  # whether it exists
        ("GET", "/api/v1/namespaces/default/pods", b"", True),
        ("DELETE", "/api/v1/namespaces/default", b"", True),
        ("GET", "/apis/node.k8s.io/v1/runtimeclasses", b"", False),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", b"{}", False),
        ("PATCH", "/api/v1/nodes/n1", b"", True),
        ("POST", "/api/v1/namespaces", b'{"metadata": {"name": "t1-team"}}', False),
        ("POST", "/api/v1/namespaces", b'{"metadata": {"name": "team"}}', True),
        ("POST", "/api/v1/namespaces", b"not json", True),
    ],
)
def test_a_test_stays_in_its_namespaces(method: str, path: str, body: bytes, refused: bool) -> None:
    assert (outside("t1", method, path, body) is not None) == refused


@pytest.fixture
def proxied() -> Iterator[tuple[EmbeddedCluster, FaultProxy, client.CoreV1Api]]:
    with EmbeddedCluster(SimSettings.for_tests()) as cluster:
        upstream = client.Configuration(host=cluster.url)
        with FaultProxy(upstream, "default") as proxy:
            api = client.ApiClient(client.Configuration(host=proxy.url))
            yield cluster, proxy, client.CoreV1Api(api)


@IN_FRONT
def test_requests_pass_and_faults_apply(
    proxied: tuple[EmbeddedCluster, FaultProxy, client.CoreV1Api],
) -> None:
    _, proxy, core = proxied
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "é"}})
    assert core.read_namespaced_config_map("a", "default").data == {"k": "é"}
    assert proxy.request_count == 2
    proxy.add_fault(Rule(method="GET", status=503))
    with pytest.raises(ApiException) as failed:
        core.read_namespaced_config_map("a", "default")
    assert failed.value.status == 503
    with pytest.raises(ApiException) as refused:
        core.list_namespaced_config_map("kube-system")
    assert refused.value.status == 403 and "test isolation" in str(refused.value.body)
    assert core.read_namespaced_config_map("a", "default").data == {"k": "é"}  # rule used up


@IN_FRONT
def test_dropped_streams_end_and_a_stopped_proxy_refuses(
    proxied: tuple[EmbeddedCluster, FaultProxy, client.CoreV1Api],
) -> None:
    _, proxy, core = proxied
    ended = threading.Event()

    def follow() -> None:
        try:
            for _ in watch.Watch().stream(
                core.list_namespaced_config_map, "default", timeout_seconds=30
            ):
                pass
        except Exception:  # a dropped connection is an error to the client: both end it
            pass
        ended.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    while not proxy._streams:  # condition: the watch is open through the proxy
        threading.Event().wait(0.01)
    proxy.drop_streams()
    assert ended.wait(10), "the watch did not end when its stream was dropped"
    proxy.stop_server()
    with pytest.raises(Exception, match=r"Connection refused|Max retries"):
        core.list_namespaced_config_map("default", _request_timeout=2)
    proxy.start_server()
    assert core.list_namespaced_config_map("default").items == []


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as kind's."""
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=kubernetes", cwd=directory,
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, subject, ext in (
        ("server", "/CN=kube-apiserver", ["-extfile", "san.ext"]),
        ("client", "/O=kubeadm:cluster-admins/CN=kubernetes-admin", []),
    ):
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", subject, cwd=directory,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", *ext, cwd=directory,
        )  # fmt: skip


@contextlib.contextmanager
def tls_api_server(directory: Path) -> Iterator[int]:
    """An HTTPS server that, like kind's API server, asks for a client certificate signed
    by its CA; it answers with what it saw of each request."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(directory / "ca.crt"))
    context.load_cert_chain(directory / "server.crt", directory / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    ready, stop = threading.Event(), threading.Event()
    port: list[int] = []

    async def seen(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
        return web.json_response(
            {
                "path": request.path_qs,
                "authorization": request.headers.get("Authorization"),
                "user": subject.get("commonName"),
            }
        )

    async def serve() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", seen)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
        port.append(int(runner.addresses[0][1]))
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield port[0]
    finally:
        stop.set()
        thread.join(10)


def test_the_proxy_speaks_the_cluster_s_tls_with_its_client_certificate_and_token(
    tmp_path: Path,
) -> None:
    """A real cluster (kind, k0s) is HTTPS with a client certificate, or a token: the
    proxy takes both from the kubeconfig and its clients speak plain HTTP to it."""
    certificates(tmp_path)
    with tls_api_server(tmp_path) as port:
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kind-tls",
                    "cluster": {
                        "server": f"https://127.0.0.1:{port}",
                        "certificate-authority": str(tmp_path / "ca.crt"),
                    },
                }
            ],
            "users": [
                {
                    "name": "kind-tls",
                    "user": {
                        "client-certificate": str(tmp_path / "client.crt"),
                        "client-key": str(tmp_path / "client.key"),
                        "token": "s3cret-token",
                    },
                }
            ],
            "contexts": [
                {"name": "kind-tls", "context": {"cluster": "kind-tls", "user": "kind-tls"}}
            ],
            "current-context": "kind-tls",
        }
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig))
        with FaultProxy(upstream_configuration(str(path), "kind-tls"), "t1") as proxy:
            url = f"{proxy.url}/api/v1/namespaces/t1/pods?limit=1"
            with urllib.request.urlopen(url, timeout=10) as response:
                seen = json.loads(response.read())
    assert seen == {
        "path": "/api/v1/namespaces/t1/pods?limit=1",
        "authorization": "Bearer s3cret-token",
        "user": "kubernetes-admin",
    }


def test_a_namespace_created_in_protobuf_is_judged_by_its_name() -> None:
    """kubectl's typed `create namespace` sends protobuf (k8s\\x00 and the object): the
    test's own namespace may be created that way, another may not."""
    from tests.faultproxy import outside

    def created(name: bytes) -> bytes:
        return b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x10\n\x0e\n" + bytes([len(name)]) + name

    assert outside("pdw-t", "POST", "/api/v1/namespaces", created(b"pdw-t-x")) is None
    refused = outside("pdw-t", "POST", "/api/v1/namespaces", created(b"kube-public"))
    assert refused is not None and "not this test's" in refused
