"""The embedded cluster answers as Kubernetes does, where pdwatch depends on it. Each test
names the behaviour and cites where Kubernetes (or the engine contract) defines it; the
clients are kubectl, the official Python client and lightkube, so that no one client's
habits are all the cluster is checked against."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster, SimSettings
from tests.target import sim_only

pytestmark = sim_only("tests the embedded cluster itself")

EXAMPLES = Path(__file__).parent.parent / "examples"
NS = "default"
KUBECTL = shutil.which("kubectl") or str(Path(__file__).parent.parent / ".venv" / "bin" / "kubectl")


def hello_bundle(tmp_path: Path, image: str | None = None) -> Bundle:
    directory = tmp_path / "hello"
    if not directory.exists():
        shutil.copytree(EXAMPLES / "hello", directory)
    result = render(directory, RenderOptions(NS, image, ""))
    assert isinstance(result, Bundle), result
    return result


def eventually(check: Callable[[], Any], timeout: float = 20) -> Any:
    """Poll a condition of the cluster's state (no event stream to wait on here)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.02)


def deployment_with(
    bundle: Bundle, code: str | None = None, **spec: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    cm = json.loads(json.dumps(bundle.code_snapshot))
    cm.pop("immutable", None)  # these tests change the mounted code in place
    if code is not None:
        cm["data"]["nodes__greet.ts"] = code
    deployment = json.loads(json.dumps(bundle.deployment))
    deployment["spec"].update(spec)
    return cm, deployment


def create(api_client: client.ApiClient, cm: dict[str, Any], deployment: dict[str, Any]) -> None:
    client.CoreV1Api(api_client).create_namespaced_config_map(NS, cm)
    client.AppsV1Api(api_client).create_namespaced_deployment(NS, deployment)


def engine_status(api_client: client.ApiClient) -> Any:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(NS).items
    pods = [p for p in pods if p.status and p.status.container_statuses]
    return pods[0].status.container_statuses[0] if pods else None


# --- kubelet ------------------------------------------------------------------------------


def test_crash_loop_first_restart_at_once_then_back_off_doubling(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """pkg/kubelet/kuberuntime (doBackOff): the first exit restarts at once; from the
    second, CrashLoopBackOff waiting 10 s, then 20 s (kubelet.go backOffPeriod 10 s,
    MaxContainerBackOff 300 s). The cluster here runs at time scale 0.05."""
    cm, deployment = deployment_with(hello_bundle(tmp_path), 'throw new Error("boom");\n')
    create(api_client, cm, deployment)
    seen: list[tuple[int, str, str]] = []

    def record() -> bool:
        status = engine_status(api_client)
        if status is not None and status.state.waiting is not None:
            entry = (
                status.restart_count,
                status.state.waiting.reason,
                status.state.waiting.message or "",
            )
            if not seen or seen[-1] != entry:
                seen.append(entry)
        return any(count >= 2 and reason == "CrashLoopBackOff" for count, reason, _ in seen)

    eventually(record)
    loops = [(count, message) for count, reason, message in seen if reason == "CrashLoopBackOff"]
    assert loops[0][0] == 1 and "back-off 10s restarting failed container=engine" in loops[0][1]
    assert loops[-1][0] == 2 and "back-off 20s" in loops[-1][1]
    status = engine_status(api_client)
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"


def test_restart_policy_never_ends_a_bare_pod_failed(api_client: client.ApiClient) -> None:
    """core/v1 PodSpec.restartPolicy: Never runs the container once; the pod ends Failed."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        NS,
        {
            "metadata": {"name": "once-code"},
            "data": {"workflow.yaml": "name: once\nversion: '1.0'\nnodes: {}\nedges: x\n"},
        },
    )
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "once"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "engine", "image": "pipedreamer-engine:latest"}],
                "volumes": [{"name": "code", "configMap": {"name": "once-code"}}],
            },
        },
    )
    pod = eventually(
        lambda: (p := core.read_namespaced_pod("once", NS)).status.phase == "Failed" and p
    )
    status = pod.status.container_statuses[0]
    assert status.restart_count == 0 and status.state.terminated.exit_code == 1


def test_any_image_pulls_except_a_reserved_invalid_host(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """There is no registry here to miss an image; `.invalid` (RFC 2606) never resolves,
    so it fails as a real pull of it would: ErrImagePull, then ImagePullBackOff."""
    _, deployment = deployment_with(hello_bundle(tmp_path, image="ghcr.io/acme/engine:7"))
    cm, _ = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    eventually(lambda: (s := engine_status(api_client)) and s.ready)
    events = client.CoreV1Api(api_client).list_namespaced_event(NS).items
    assert any(e.reason == "Pulled" and "ghcr.io/acme/engine:7" in e.message for e in events)


# --- deployment controller ----------------------------------------------------------------


def test_a_paused_deployment_does_not_roll_out(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """pkg/controller/deployment/sync.go: paused, a template change makes no ReplicaSet;
    Progressing is Unknown with reason DeploymentPaused; resumed, it rolls out."""
    apps = client.AppsV1Api(api_client)
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    eventually(lambda: len(apps.list_namespaced_replica_set(NS).items) == 1)
    apps.patch_namespaced_deployment("hello", NS, {"spec": {"paused": True}})
    apps.patch_namespaced_deployment(
        "hello", NS, {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}
    )
    d = eventually(
        lambda: (
            (
                (x := apps.read_namespaced_deployment("hello", NS)).status.observed_generation
                == x.metadata.generation
            )
            and x
        )
    )
    (progressing,) = [c for c in d.status.conditions if c.type == "Progressing"]
    assert (progressing.status, progressing.reason) == ("Unknown", "DeploymentPaused")
    assert len(apps.list_namespaced_replica_set(NS).items) == 1
    apps.patch_namespaced_deployment("hello", NS, {"spec": {"paused": False}})
    eventually(lambda: len(apps.list_namespaced_replica_set(NS).items) == 2)


def test_recreate_removes_the_old_pods_before_creating_new_ones(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """recreate.go rolloutRecreate: old ReplicaSets to zero, wait until their pods are
    gone, then the new ReplicaSet up."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    cm, deployment = deployment_with(hello_bundle(tmp_path), strategy={"type": "Recreate"})
    create(api_client, cm, deployment)
    first = eventually(
        lambda: [p for p in core.list_namespaced_pod(NS).items if p.status.phase == "Running"]
    )[0].metadata.name
    apps.patch_namespaced_deployment(
        "hello", NS, {"spec": {"template": {"metadata": {"annotations": {"x": "2"}}}}}
    )
    overlap = []

    def replaced() -> bool:
        names = {p.metadata.name for p in core.list_namespaced_pod(NS).items}
        if first in names and len(names) > 1:
            overlap.append(names)
        return first not in names and len(names) == 1

    eventually(replaced)
    assert overlap == [], "a new pod existed while the old one did"


def test_progress_deadline_exceeded(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """progress.go: no progress for progressDeadlineSeconds → Progressing False,
    ProgressDeadlineExceeded, 'ReplicaSet "…" has timed out progressing.'"""
    cluster.set_image("engine:unready", ready=False)
    apps = client.AppsV1Api(api_client)
    cm, deployment = deployment_with(
        hello_bundle(tmp_path, image="engine:unready"), progressDeadlineSeconds=4
    )
    create(api_client, cm, deployment)

    def timed_out() -> Any:
        d = apps.read_namespaced_deployment("hello", NS)
        return next(
            (
                c
                for c in (d.status.conditions or [])
                if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded"
            ),
            None,
        )

    condition = eventually(timed_out)
    assert condition.status == "False"
    assert condition.message.endswith("has timed out progressing.")


def test_revision_annotation_and_kubectl_rollout_undo(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """sync.go setDeploymentRevision: the Deployment carries its new ReplicaSet's
    revision, which `kubectl rollout undo` (a client-side read of the ReplicaSets, then a
    patch) needs."""
    apps = client.AppsV1Api(api_client)
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    revision = "deployment.kubernetes.io/revision"
    eventually(
        lambda: (
            apps.read_namespaced_deployment("hello", NS).metadata.annotations.get(revision) == "1"
        )
    )
    apps.patch_namespaced_deployment(
        "hello", NS, {"spec": {"template": {"metadata": {"annotations": {"x": "2"}}}}}
    )
    eventually(
        lambda: (
            apps.read_namespaced_deployment("hello", NS).metadata.annotations.get(revision) == "2"
        )
    )
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "rollout", "undo", "deployment/hello"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    d = eventually(
        lambda: (
            (x := apps.read_namespaced_deployment("hello", NS)).metadata.annotations.get(revision)
            == "3"
            and x
        )
    )
    assert "x" not in (d.spec.template.metadata.annotations or {})


# --- the engine (REFERENCE.md §2), run by the simulated kubelet ---------------------------


def engine_log(
    api_client: client.ApiClient, tmp_path: Path, workflow: str, nodes: dict[str, str]
) -> list[str]:
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    cm["data"] = {"workflow.yaml": workflow, **{f"nodes__{k}": v for k, v in nodes.items()}}
    deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"] = [
        {"key": k, "path": k.replace("__", "/")} for k in cm["data"]
    ]
    create(api_client, cm, deployment)
    core = client.CoreV1Api(api_client)

    def logs() -> Any:
        """The serving engine's log, or the whole log of one that ended at start."""
        pods = core.list_namespaced_pod(NS).items
        for pod in pods:
            for previous in (False, True):
                try:
                    text = core.read_namespaced_pod_log(pod.metadata.name, NS, previous=previous)
                except client.exceptions.ApiException:
                    continue
                if "GET  /health — health check" in text or (
                    previous and "failed to start" in text
                ):
                    return text.splitlines()
        return None

    return list(eventually(logs))


WORKFLOW = """name: dag
version: 1.10
triggers: [{type: manual}]
nodes:
  zeta: {path: ./nodes/zeta.ts}
  alpha: {path: ./nodes/alpha.ts}
  mid: {path: ./nodes/mid.ts}
edges:
  - {from: zeta, to: mid}
  - {from: alpha, to: mid}
config:
  timeout: 1h
"""


def test_engine_start_up_order_and_lines(tmp_path: Path, api_client: client.ApiClient) -> None:
    lines = engine_log(
        api_client,
        tmp_path,
        WORKFLOW,
        {
            "zeta.ts": 'console.log("zeta loaded");\nexport default async () => 1;\n',
            "alpha.ts": "export default async () => 1;\n",
            "mid.ts": "export default async () => 2;\n",
        },
    )
    assert lines == [
        "Pipedreamer Engine starting...",
        "Workflow: dag v1.1",  # YAML 1.2: an unquoted 1.10 is the number 1.1
        "DAG compiled: 2 stage(s), 3 node(s)",
        "  Stage 1: [alpha, zeta]",  # the ready queue kept sorted
        "  Stage 2: [mid]",
        'Invalid timeout format "1h" — expected "<number>s" or "<number>m". Using default 30s.',
        "zeta loaded",  # modules load after the DAG is printed
        "Workflow server listening on http://localhost:8080",
        "  POST /run    — trigger workflow execution",
        "  GET  /health — health check",
    ]


def test_engine_exits_without_an_edges_array(tmp_path: Path, api_client: client.ApiClient) -> None:
    lines = engine_log(api_client, tmp_path, "name: x\nversion: '1.0'\nnodes: {}\n", {})
    assert (
        'Engine failed to start: Error: Workflow spec missing required field: "edges" '
        "(must be an array)"
    ) in lines


def test_engine_refuses_a_module_that_does_not_parse(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    lines = engine_log(
        api_client,
        tmp_path,
        "name: x\nversion: '1.0'\nnodes: {a: {path: ./nodes/a.ts}}\nedges: []\n",
        {"a.ts": "export default async function run() {\n  return {a: 1\n}\n"},
    )
    assert any(
        line.startswith("Engine failed to start: TypeError: SyntaxError: ") for line in lines
    )
    # where the missing "}" is, in the module as mounted
    assert any(re.fullmatch(r"\s+at file://\S*/workflow/nodes/a\.ts:3:2", line) for line in lines)


# --- the fidelity of names: pdwatch's rules and the embedded cluster's agree -----------------


def test_settings_for_tests_keep_the_shape_of_real_timings() -> None:
    real, fast = SimSettings(), SimSettings.for_tests()
    assert (real.crash_backoff, real.crash_backoff_max) == (10.0, 300.0)
    assert fast.scaled(real.crash_backoff) == pytest.approx(0.5)


# --- API server: deletion, watches, HTTP ---------------------------------------------------


def test_finalizers_hold_an_object_until_removed(api_client: client.ApiClient) -> None:
    """registry/generic/registry/store.go: with finalizers, delete only sets
    deletionTimestamp; the object goes when the last finalizer is removed."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        NS, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    )
    core.delete_namespaced_config_map("held", NS)
    held = core.read_namespaced_config_map("held", NS)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("held", NS, {"metadata": {"finalizers": None}})
    eventually(
        lambda: "held" not in [c.metadata.name for c in core.list_namespaced_config_map(NS).items]
    )


def owned_pair(api_client: client.ApiClient) -> tuple[str, str]:
    """A ConfigMap owning another one (ownerReferences), as the garbage collector sees it."""
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(NS, {"metadata": {"name": "owner"}, "data": {}})
    core.create_namespaced_config_map(
        NS,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            },
            "data": {},
        },
    )
    return "owner", "dependent"


def names(api_client: client.ApiClient) -> set[str]:
    return {
        c.metadata.name for c in client.CoreV1Api(api_client).list_namespaced_config_map(NS).items
    }


@pytest.mark.parametrize(
    ("policy", "dependent_kept"), [("Background", False), ("Foreground", False), ("Orphan", True)]
)
def test_deletion_propagation(
    api_client: client.ApiClient, policy: str, dependent_kept: bool
) -> None:
    """garbagecollector: Background deletes the dependents after the owner, Foreground
    before it (the owner waits with foregroundDeletion), Orphan keeps them, unowned."""
    owner, dependent = owned_pair(api_client)
    client.CoreV1Api(api_client).delete_namespaced_config_map(
        owner, NS, body=client.V1DeleteOptions(propagation_policy=policy)
    )
    eventually(lambda: owner not in names(api_client))
    assert (dependent in names(api_client)) == dependent_kept
    if dependent_kept:
        kept = client.CoreV1Api(api_client).read_namespaced_config_map(dependent, NS)
        assert not kept.metadata.owner_references


def test_a_terminating_namespace(api_client: client.ApiClient) -> None:
    """pkg/controller/namespace: Terminating while its content goes; creating content in
    it is 403, creating it again 409; then it is gone and can be created."""
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map(
        "doomed", {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    )
    core.delete_namespace("doomed")
    assert core.read_namespace("doomed").status.phase == "Terminating"
    with pytest.raises(client.exceptions.ApiException) as refused:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "new"}, "data": {}})
    assert refused.value.status == 403
    assert "because it is being terminated" in json.loads(refused.value.body)["message"]
    with pytest.raises(client.exceptions.ApiException) as again:
        core.create_namespace({"metadata": {"name": "doomed"}})
    assert again.value.status == 409
    core.patch_namespaced_config_map("held", "doomed", {"metadata": {"finalizers": None}})
    eventually(lambda: "doomed" not in [n.metadata.name for n in core.list_namespace().items])
    core.create_namespace({"metadata": {"name": "doomed"}})


def cluster_client(cluster: EmbeddedCluster) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=cluster.url))


def raw(
    cluster: EmbeddedCluster, method: str, path: str, body: bytes | None = None, **headers: str
) -> Any:
    import urllib3

    return urllib3.PoolManager().request(
        method, f"{cluster.url}{path}", body=body, headers=headers, preload_content=False
    )


@pytest.mark.parametrize(
    ("value", "is_watch"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("0", False),
        ("false", False),
        ("FALSE", False),
    ],
)
def test_boolean_query_parameters(cluster: EmbeddedCluster, value: str, is_watch: bool) -> None:
    """apimachinery runtime Convert_Slice_string_To_bool: only "0" and "false" (any case)
    are false."""
    client.CoreV1Api(cluster_client(cluster)).create_namespaced_config_map(
        NS, {"metadata": {"name": "seen"}, "data": {}}
    )
    response = raw(
        cluster, "GET", f"/api/v1/namespaces/default/configmaps?watch={value}&timeoutSeconds=1"
    )
    first = json.loads(response.read().split(b"\n")[0] or b"{}")
    assert ("type" in first) == is_watch, first
    response.release_conn()


def test_error_responses_carry_exactly_application_json(cluster: EmbeddedCluster) -> None:
    response = raw(cluster, "GET", "/api/v1/namespaces/default/configmaps/missing")
    assert response.status == 404
    assert response.headers["Content-Type"] == "application/json"
    assert json.loads(response.read())["kind"] == "Status"


def test_watch_bookmarks_before_the_timeout(cluster: EmbeddedCluster) -> None:
    """storage/cacher: with allowWatchBookmarks, a BOOKMARK comes shortly before the
    watch's timeout (and every minute), carrying the current resourceVersion."""
    response = raw(
        cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&timeoutSeconds=3",
    )
    lines = [json.loads(line) for line in response.read().split(b"\n") if line.strip()]
    bookmarks = [e for e in lines if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[0]["object"]["metadata"]["resourceVersion"]


def test_an_expired_resource_version_gets_410_in_the_stream(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """A watch from before the kept history: an ERROR event with code 410 (Expired)."""
    core = client.CoreV1Api(api_client)
    big = "x" * 300_000
    core.create_namespaced_config_map(NS, {"metadata": {"name": "big"}, "data": {"a": big}})
    rv = int(core.read_namespaced_config_map("big", NS).metadata.resource_version)
    core.delete_namespaced_config_map("big", NS)  # a large object's history is compacted
    response = raw(
        cluster,
        "GET",
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv - 1}&timeoutSeconds=1",
    )
    first = json.loads(response.read().split(b"\n")[0])
    assert first["type"] == "ERROR" and first["object"]["code"] == 410


def test_apply_defaults_list_map_keys_before_merging(
    api_client: client.ApiClient, cluster: EmbeddedCluster
) -> None:
    """A port applied without its protocol meets its live twin (protocol defaulted to TCP):
    re-applying it changes nothing (no duplicate, no new generation)."""
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]},
    }
    path = "/api/v1/namespaces/default/services/svc?fieldManager=test&force=true"
    for _ in range(2):
        response = raw(
            cluster,
            "PATCH",
            path,
            json.dumps(body).encode(),
            **{"Content-Type": "application/apply-patch+yaml"},
        )
        assert response.status in (200, 201), response.read()
    service = client.CoreV1Api(api_client).read_namespaced_service("svc", NS)
    assert [(p.port, p.protocol) for p in service.spec.ports] == [(80, "TCP")]


def test_lightkube_as_a_third_client(cluster: EmbeddedCluster) -> None:
    """lightkube (httpx, its own models) against the cluster: apply, get, a 404 as its
    ApiError, a watch."""
    from lightkube import ApiError, Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    lk = Client(config=KubeConfig.from_dict(cluster.kubeconfig()), field_manager="lightkube")
    lk.apply(
        ConfigMap(metadata=ObjectMeta(name="lk", namespace=NS), data={"k": "🚀 v"}), force=True
    )
    assert lk.get(ConfigMap, "lk", namespace=NS).data == {"k": "🚀 v"}
    with pytest.raises(ApiError) as missing:
        lk.get(ConfigMap, "nope", namespace=NS)
    assert missing.value.status.code == 404
    for op, obj in lk.watch(ConfigMap, namespace=NS, server_timeout=1):
        if obj.metadata.name == "lk":
            assert op == "ADDED"
            break


def test_what_is_not_supported_says_what_to_do_instead(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
    created = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "create", "namespace", "typed"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        created.returncode != 0
        and "--dry-run=client -o yaml | kubectl apply -f -" in created.stderr
    )
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    pod = eventually(lambda: client.CoreV1Api(api_client).list_namespaced_pod(NS).items)[0]
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "exec", pod.metadata.name, "--", "ls"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "not containers" in done.stderr and "service proxy" in done.stderr


def test_kubectl_scale_through_the_scale_subresource(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """registry/apps/deployment ScaleREST: autoscaling/v1 Scale, as kubectl scale uses it."""
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "scale", "deployment/hello", "--replicas=2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    scale = client.AppsV1Api(api_client).read_namespaced_deployment_scale("hello", NS)
    assert scale.spec.replicas == 2 and scale.status.selector == "app.kubernetes.io/name=hello"
    eventually(
        lambda: (
            len(
                [
                    p
                    for p in client.CoreV1Api(api_client).list_namespaced_pod(NS).items
                    if p.status.phase == "Running"
                ]
            )
            == 2
        )
    )


def test_a_restarted_container_sees_the_configmap_after_the_kubelets_sync(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """Mounted ConfigMaps follow the object lazily (kubelet syncFrequency, about a minute):
    a crash-looping pod whose code is fixed in the ConfigMap, with no rollout, comes up
    once a restart happens after the sync."""
    cm, deployment = deployment_with(hello_bundle(tmp_path), 'throw new Error("broken");\n')
    create(api_client, cm, deployment)
    core = client.CoreV1Api(api_client)
    crashed = eventually(
        lambda: [
            p
            for p in core.list_namespaced_pod(NS).items
            if p.status.container_statuses
            and p.status.container_statuses[0].last_state.terminated is not None
        ]
    )
    first = crashed[0].metadata.name
    cm["data"]["nodes__greet.ts"] = (
        'console.log("fixed in place");\nexport default async () => ({});\n'
    )
    core.replace_namespaced_config_map(cm["metadata"]["name"], NS, cm)
    pod = eventually(
        lambda: (p := core.read_namespaced_pod(first, NS)).status.container_statuses[0].ready and p,
        timeout=30,
    )
    assert pod.status.container_statuses[0].restart_count >= 1
    assert "fixed in place" in core.read_namespaced_pod_log(first, NS).splitlines()


def test_a_terminating_pod_is_written_not_ready_before_it_goes(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """pkg/kubelet/kubelet.go syncTerminatedPod: the pod's final status (containers
    terminated, Ready False) is written before the status manager deletes it; a watcher
    sees the pod go not-ready, then DELETED."""
    cm, deployment = deployment_with(hello_bundle(tmp_path))
    create(api_client, cm, deployment)
    core = client.CoreV1Api(api_client)
    pod = eventually(
        lambda: [
            p
            for p in core.list_namespaced_pod(NS).items
            if p.status.container_statuses and p.status.container_statuses[0].ready
        ]
    )[0]
    listed = core.list_namespaced_pod(NS, field_selector=f"metadata.name={pod.metadata.name}")
    core.delete_namespaced_pod(pod.metadata.name, NS)
    seen: list[tuple[str, bool, Any]] = []
    for event in watch.Watch().stream(
        core.list_namespaced_pod,
        NS,
        field_selector=f"metadata.name={pod.metadata.name}",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=20,
    ):
        obj = event["object"]
        status = obj.status.container_statuses[0]
        seen.append((event["type"], status.ready, status.state.terminated))
        if event["type"] == "DELETED":
            break
    assert seen[-1][0] == "DELETED"
    not_ready = [s for s in seen if s[0] == "MODIFIED" and not s[1]]
    assert not_ready, seen
    terminated = not_ready[-1][2]
    assert terminated is not None and terminated.exit_code == 143 and terminated.reason == "Error"


def test_a_watch_from_a_future_resource_version_times_out_in_the_stream(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """apiserver storage/cacher: a resourceVersion the cache has not reached fails with
    NewTooLargeResourceVersionError (504 Timeout, cause ResourceVersionTooLarge,
    retryAfterSeconds 1), sent as an ERROR watch event once the RV has been parsed (a real
    server first waits up to 3 s for the cache; the embedded one answers at once). A
    client that outlived a recreated cluster meets this."""
    core = client.CoreV1Api(api_client)
    current = int(core.list_namespaced_config_map(NS).metadata.resource_version)
    response = raw(
        cluster,
        "GET",
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={current + 1000}"
        "&timeoutSeconds=1",
    )
    first = json.loads(response.read().split(b"\n")[0])
    assert first["type"] == "ERROR"
    status = first["object"]
    assert (status["code"], status["reason"]) == (504, "Timeout")
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert status["details"]["retryAfterSeconds"] == 1
