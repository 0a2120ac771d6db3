"""The real-cluster mode's fault proxy (tests/faultproxy.py), in front of an embedded
cluster: it forwards as given, injects the faults the tests ask for, and keeps a test in
its namespaces."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from devloop.sim import EmbeddedCluster, Rule, SimSettings
from tests.faultproxy import FaultProxy, outside
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
