"""Test configuration shared by the whole suite."""

from __future__ import annotations

import os

from hypothesis import settings

# CI replays the same examples every run (a red CI must be reproducible); local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# --- the cluster under test: embedded ones, or a real one (tests/target.py) ----------------

import contextlib  # noqa: E402
from collections.abc import AsyncIterator, Iterator  # noqa: E402
from typing import Any, cast  # noqa: E402

import pytest  # noqa: E402
from kubernetes import client  # noqa: E402

from devloop.sim import EmbeddedCluster, SimSettings  # noqa: E402
from tests import target  # noqa: E402
from tests.faultproxy import FaultProxy, upstream_configuration  # noqa: E402


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What was skipped and why, grouped, in the run's last lines: a skip is never silent
    (pytest says only "N skipped" without -rs)."""
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.write_sep("-", "skipped, and why")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:4d} {reason}")


ON_THE_CLUSTER = "namespace"  # every fixture of the cluster under test depends on it
NOT_ON_THE_CLUSTER = (
    "does not use the cluster under test (no namespace of its own there): it ran in the "
    "embedded-cluster pass"
)


# A few long tests that use no cluster under test (a pipx install, control planes started
# and stopped by the test itself): when `dev.py test` runs both passes (it says so in
# PDWATCH_TEST_PASSES), they run in the second pass instead of the first, so each pass
# keeps under 10 minutes.
SECOND_PASS = "second_pass"
IN_THE_SECOND_PASS = "runs in the real control plane's pass (dev.py test runs both)"


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", f"{SECOND_PASS}: {IN_THE_SECOND_PASS}")


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    """In real-cluster mode, only the tests that use the cluster under test run: the others
    (rendering, parsing, the TUI's own widgets, a pdwatch with --embedded, a control plane
    of their own for the differential tests) do exactly what they did in the
    embedded-cluster pass, and would only run twice."""
    both = os.environ.get("PDWATCH_TEST_PASSES") == "both"
    if target.REAL is None:
        for item in items:
            if both and item.get_closest_marker(SECOND_PASS):
                item.add_marker(pytest.mark.skip(reason=IN_THE_SECOND_PASS))
        return
    if os.environ.get("PDWATCH_TEST_EVERYTHING"):
        return
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if both and item.get_closest_marker(SECOND_PASS):
            continue
        if ON_THE_CLUSTER not in names or "control_plane" in names:
            item.add_marker(pytest.mark.skip(reason=NOT_ON_THE_CLUSTER))


def pytest_report_header(config: Any) -> str:
    real = target.REAL
    if real is None:
        return "pdwatch: embedded clusters (set PDWATCH_TEST_KUBECONFIG for a real one)"
    return (
        f"pdwatch: real cluster {real.context} from {real.kubeconfig}, "
        f"image {real.image or 'pdwatch default'}"
    )


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's namespace: "default" of its own embedded cluster, or one created for it on
    the real cluster and removed after it."""
    if target.REAL is None:
        yield "default"
        return
    with target.direct_client(target.REAL) as api:
        yield from target.own_namespace(api, target.namespace_name(request.node.name))


@pytest.fixture
def cluster(namespace: str) -> Iterator[EmbeddedCluster]:
    if target.REAL is None:
        with EmbeddedCluster(SimSettings.for_tests()) as running:
            yield running
        return
    upstream = upstream_configuration(str(target.REAL.kubeconfig), target.REAL.context)
    with FaultProxy(upstream, namespace) as proxy:
        # Typed as the embedded cluster: it answers the same hooks, black-box, and fails
        # loudly on the others (target.SimOnlyHook).
        proxied = target.ProxiedCluster(target.REAL, proxy, namespace)
        try:
            yield cast(EmbeddedCluster, proxied)
        finally:
            if proxied.machine_changed:  # the next test meets the node as it started
                target.reset_machine(target.REAL)


@pytest.fixture
def api_client(cluster: EmbeddedCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration(host=cluster.url)
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(autouse=True)
async def _asyncio_clients_closed(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """The asyncio clients a test's Kubes made for themselves (from the synchronous
    `api_client`) are closed with the test, on its loop: no connection outlives it."""
    from devloop.kube import client as kube_client

    made: list[Any] = []
    original = kube_client.asyncio_client

    def recorded(configuration: client.Configuration) -> Any:
        made.append(original(configuration))
        return made[-1]

    monkeypatch.setattr(kube_client, "asyncio_client", recorded)
    yield
    for api in made:
        with contextlib.suppress(Exception):  # made on another loop, already closed
            await api.close()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Kubernetes' own control plane with pdwatch's node, for the tests that compare with it
    or drive it with kubectl (started once, on first use; needs Go to build it)."""
    from devloop.controlplane import build
    from devloop.controlplane.cluster import Running

    if build.go_binary() is None:
        pytest.skip(f"no Go toolchain to build Kubernetes' control plane: {build.HOW_TO_GET_GO}")
    kubeconfig = tmp_path_factory.mktemp("controlplane") / "kubeconfig"
    with Running(kubeconfig, SimSettings(time_scale=0.05)) as running:
        yield running


@pytest.fixture
def the_node(api_client: client.ApiClient) -> Iterator[tuple[client.CoreV1Api, str]]:
    """The cluster's one node, to change as an administrator would: the embedded cluster's
    (a cluster of the test's own), or pdwatch's node on Kubernetes' own control plane,
    given back its taints and allocatable after the test."""
    if target.REAL is None:
        core = client.CoreV1Api(api_client)
        (node,) = core.list_node().items
        yield core, node.metadata.name
        return
    with target.direct_client(target.REAL) as admin:
        core = client.CoreV1Api(admin)
        (node,) = core.list_node().items
        taints = [t.to_dict() for t in node.spec.taints or []]
        allocatable = dict(node.status.allocatable or {})
        try:
            yield core, node.metadata.name
        finally:
            core.patch_node(node.metadata.name, {"spec": {"taints": taints or None}})
            core.patch_node_status(node.metadata.name, {"status": {"allocatable": allocatable}})
