"""Which cluster the integration tests run against: embedded ones (the default), or a real
cluster named by the environment (real-cluster mode):

    PDWATCH_TEST_KUBECONFIG=PATH   the kubeconfig of the cluster (kind, k0s, ...)
    PDWATCH_TEST_CONTEXT=NAME      its context (default: the kubeconfig's current one)
    PDWATCH_TEST_IMAGE=IMAGE       the engine image to deploy (default: pdwatch's own
                                   choice, pipedreamer-engine:latest)
    PDWATCH_TEST_PATIENCE=N        wait N times longer than on the embedded cluster (4)

In real-cluster mode each test gets a namespace of its own, created and removed by the
test, and talks to the cluster through a fault-injecting proxy (tests/faultproxy.py) that
keeps it inside that namespace. Tests that need what only the embedded cluster offers are
marked `sim_only(reason)` and skipped there with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch

from devloop.node import machine
from devloop.render import DEFAULT_RUNTIME_CLASS, RenderOptions
from devloop.sim.settings import ImageBehaviour
from tests.faultproxy import FaultProxy

EMBEDDED_CONTEXT = "pdwatch-embedded"


@dataclass(frozen=True)
class RealCluster:
    kubeconfig: Path
    context: str
    image: str | None


def real_cluster_from_env() -> RealCluster | None:
    path = os.environ.get("PDWATCH_TEST_KUBECONFIG")
    if not path:
        return None
    wanted = os.environ.get("PDWATCH_TEST_CONTEXT") or None
    contexts, current = config.list_kube_config_contexts(config_file=path)
    names = [c["name"] for c in contexts]
    context = wanted or current["name"]
    if context not in names:
        raise pytest.UsageError(f"PDWATCH_TEST_CONTEXT {context!r} is not in {path} ({names})")
    return RealCluster(Path(path), context, os.environ.get("PDWATCH_TEST_IMAGE") or None)


REAL = real_cluster_from_env()


# A real cluster starts pods in seconds, not the embedded cluster's tenths: the tests'
# waits for what should happen are this much longer there (a passing test waits no longer).
PATIENCE = 1.0 if REAL is None else float(os.environ.get("PDWATCH_TEST_PATIENCE", "4"))


def patience(seconds: float) -> float:
    """How long to wait for something that takes `seconds` on an embedded cluster."""
    return seconds * PATIENCE


def sim_only(reason: str) -> pytest.MarkDecorator:
    """Skips the test in real-cluster mode: it needs the embedded cluster for `reason`."""
    return pytest.mark.skipif(REAL is not None, reason=f"embedded cluster only: {reason}")


@cache
def has_pdwatch_node() -> bool:
    """Whether the real cluster's node is pdwatch's (Kubernetes' own control plane with
    devloop.node), whose machine tests can configure (devloop/node/machine.py)."""
    if REAL is None:
        return True
    with direct_client(REAL) as api:
        # Asked when test modules are imported: a control plane started just before may
        # not have its node registered yet (every cluster has one; none means not yet).
        # Decided on an empty list, every machine test skipped silently (seen in CI).
        core = client.CoreV1Api(api)
        nodes = core.list_node().items
        if not nodes:  # wait for the first to register (a watch, not a poll)
            for event in watch.Watch().stream(core.list_node, timeout_seconds=60):
                nodes = [event["object"]]
                break
        if not nodes:
            raise RuntimeError(f"{REAL.kubeconfig}: the cluster has no node after 60 s")
    return any(
        (n.status.node_info.container_runtime_version or "").startswith("pdwatch://") for n in nodes
    )


def machine_only(reason: str) -> pytest.MarkDecorator:
    """Skips the test on a real cluster whose node is not pdwatch's (kind, k0s): it sets up
    the node's machine (`reason`: images that crash, registries), which only pdwatch's node
    lets a test do, on the embedded cluster and on Kubernetes' own control plane alike."""
    return pytest.mark.skipif(
        REAL is not None and not has_pdwatch_node(),
        reason=f"pdwatch's node only (not a kubelet's machine): {reason}",
    )


def image_from_files(what: str) -> pytest.MarkDecorator:
    """Skips the test when PDWATCH_TEST_IMAGE is set: it deploys the image the workflow's
    own files name (`what`), which the test image would replace."""
    return pytest.mark.skipif(
        REAL is not None and REAL.image is not None,
        reason=f"the workflow names its engine image ({what}); PDWATCH_TEST_IMAGE replaces it",
    )


# What the proxy answers of the embedded cluster's surface, black-box.
FAULT_HOOKS = frozenset(
    {
        "url",
        "port",
        "request_count",
        "held_requests",
        "set_latency",
        "fail_next",
        "add_fault",
        "forbid",
        "clear_faults",
        "drop_streams",
        "stop_server",
        "start_server",
    }
)


class SimOnlyHook(AssertionError):
    """A test reached for an embedded-cluster hook in real-cluster mode without sim_only."""


@dataclass
class ProxiedCluster:
    """The real cluster as the tests see it: the proxy's address, the test's namespace and
    the embedded cluster's fault hooks (answered by the proxy). Hooks only the embedded
    cluster has fail loudly, so a test that needs one must be marked sim_only."""

    real: RealCluster
    proxy: FaultProxy
    namespace: str
    machine_changed: bool = field(default=False)

    def kubeconfig(
        self, namespace: str | None = None, context: str | None = None
    ) -> dict[str, Any]:
        name = context or self.real.context
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [
                {
                    "name": name,
                    "context": {
                        "cluster": name,
                        "user": name,
                        "namespace": namespace or self.namespace,
                    },
                }
            ],
            "current-context": name,
        }

    def write_kubeconfig(
        self, path: Path, namespace: str | None = None, context: str | None = None
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace, context), sort_keys=False))
        return path

    # --- the node's machine (devloop/node/machine.py), through its ConfigMap --------------

    def set_image(
        self, image: str, ready: bool = True, oom_killed: bool = False, exit_code: int | None = None
    ) -> None:
        behaviour = ImageBehaviour(ready, oom_killed=oom_killed, exit_code=exit_code)
        self._change_machine(lambda m: replace(m, images={**m.images, image: behaviour}))

    def add_private_registry(self, host: str) -> None:
        self._change_machine(lambda m: replace(m, private_registries=m.private_registries | {host}))

    def add_failing_registry(self, host: str) -> None:
        self._change_machine(lambda m: replace(m, failing_registries=m.failing_registries | {host}))

    def _change_machine(self, change: Callable[[machine.Machine], machine.Machine]) -> None:
        """Write the node's machine ConfigMap, then wait until the node says it has taken
        that version in (its Node's annotation)."""
        with direct_client(self.real) as api:
            core = client.CoreV1Api(api)
            try:
                found = core.read_namespaced_config_map(machine.NAME, machine.NAMESPACE)
            except client.ApiException as err:
                if err.status != 404:
                    raise
                found = None
            data = machine.render(change(machine.parse((found.data or {}) if found else {})))
            if found is None:
                body = {"metadata": {"name": machine.NAME}, "data": data}
                written = core.create_namespaced_config_map(machine.NAMESPACE, body)
            else:
                found.data = data
                written = core.replace_namespaced_config_map(machine.NAME, machine.NAMESPACE, found)
            self.machine_changed = True
            wait_for_machine(core, written.metadata.resource_version)

    def __getattr__(self, name: str) -> Any:
        if name in FAULT_HOOKS:
            return getattr(self.proxy, name)
        raise SimOnlyHook(
            f"cluster.{name} exists only on the embedded cluster: mark the test sim_only"
        )


def limited_user(namespace: str) -> str:
    """Who the API server says was refused after `cluster.forbid(...)`: the embedded
    cluster's one user, or the proxy's limited ServiceAccount (tests/faultproxy.py)."""
    if REAL is None:
        return "pdwatch-embedded"
    return f"system:serviceaccount:{namespace}:pdwatch-limited"


def wait_for_machine(core: client.CoreV1Api, version: str, timeout: int = 30) -> None:
    """Until pdwatch's node says it has taken in machine ConfigMap `version` ("" for the
    ConfigMap gone)."""

    def taken(nodes: list[Any]) -> bool:
        return any(
            ((n.metadata.annotations or {}).get(machine.ANNOTATION) or "") == version for n in nodes
        )

    listed = core.list_node()
    if taken(listed.items):
        return
    w = watch.Watch()
    for event in w.stream(
        core.list_node,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=int(patience(timeout)),
    ):
        if taken([event["object"]]):
            w.stop()
            return
    raise AssertionError(f"the node did not take machine version {version!r} in")


def reset_machine(real: RealCluster) -> None:
    """The node's machine as it started: its ConfigMap deleted, and the node past it."""
    with direct_client(real) as api:
        core = client.CoreV1Api(api)
        try:
            core.delete_namespaced_config_map(machine.NAME, machine.NAMESPACE)
        except client.ApiException as err:
            if err.status != 404:
                raise
        wait_for_machine(core, "")


def render_options(namespace: str) -> RenderOptions:
    """What pdwatch is asked to render in this mode: the test's namespace, image and
    RuntimeClass."""
    if REAL is None:
        return RenderOptions(namespace)
    return RenderOptions(namespace, REAL.image, runtime_class())


def context_name() -> str:
    return REAL.context if REAL is not None else EMBEDDED_CONTEXT


def cli_args() -> list[str]:
    """The options a pdwatch process needs to deploy as the tests do in this mode."""
    if REAL is None:
        return []
    args = ["--runtime-class", runtime_class()]
    if REAL.image:
        args += ["--image", REAL.image]
    return args


def direct_client(real: RealCluster) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(real.kubeconfig), context=real.context, client_configuration=configuration
    )
    return client.ApiClient(configuration)


@cache
def runtime_class() -> str:
    """pdwatch's default RuntimeClass when the real cluster has it, else none (stock kind
    and k0s have no gvisor)."""
    if REAL is None:
        return DEFAULT_RUNTIME_CLASS
    with direct_client(REAL) as api:
        names = {r.metadata.name for r in client.NodeV1Api(api).list_runtime_class().items}
    return DEFAULT_RUNTIME_CLASS if DEFAULT_RUNTIME_CLASS in names else ""


def namespace_name(test_name: str) -> str:
    """A DNS label unique to this test run: pdw-<test>-<random>."""
    stem = "".join(c if c.isalnum() else "-" for c in test_name.lower()).strip("-")
    return f"pdw-{stem[:40].strip('-')}-{secrets.token_hex(3)}"


def own_namespace(api: client.ApiClient, name: str, timeout: int = 60) -> Iterator[str]:
    """Create `name`, wait for its default ServiceAccount (pods are refused before it
    exists), yield it, and delete it with everything in it."""
    core = client.CoreV1Api(api)
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "pdwatch-tests"}}}
    )
    try:
        accounts = core.list_namespaced_service_account(name)
        if not any(a.metadata.name == "default" for a in accounts.items):
            w = watch.Watch()
            for event in w.stream(
                core.list_namespaced_service_account,
                name,
                resource_version=accounts.metadata.resource_version,
                timeout_seconds=timeout,
            ):
                if event["object"].metadata.name == "default":
                    w.stop()
                    break
            else:
                raise AssertionError(f"namespace {name}: no default ServiceAccount in {timeout}s")
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
