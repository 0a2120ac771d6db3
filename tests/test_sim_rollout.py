"""The embedded cluster's controllers and kubelet: rollouts, failure modes, logs, the proxy.

Everything is observed through the official client over HTTP, waiting on watch events.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster
from tests.kubewait import is_ready, wait_for, wait_for_event
from tests.target import sim_only

pytestmark = sim_only("tests the embedded cluster itself")

EXAMPLES = Path(__file__).parent.parent / "examples"
APPLY = "application/apply-patch+yaml"
NS = "default"


def apply_all(api: client.ApiClient, bundle: Bundle) -> None:
    """Server-side apply every manifest, as pdwatch will."""
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    calls = {
        "ConfigMap": core.patch_namespaced_config_map,
        "Secret": core.patch_namespaced_secret,
        "Service": core.patch_namespaced_service,
        "CronJob": batch.patch_namespaced_cron_job,
        "Deployment": apps.patch_namespaced_deployment,
    }
    for m in bundle.manifests():
        calls[m["kind"]](
            m["metadata"]["name"], NS, m, field_manager="pdwatch", force=True, _content_type=APPLY
        )


def bundle_of(tmp_path: Path, example: str = "uptime-prober", **options: Any) -> Bundle:
    target = tmp_path / example
    if not target.exists():
        shutil.copytree(EXAMPLES / example, target)
    result = render(target, RenderOptions(**options))
    assert isinstance(result, Bundle), result
    return result


def pods_of(api: client.ApiClient, app: str) -> list[Any]:
    return list(
        client.CoreV1Api(api)
        .list_namespaced_pod(NS, label_selector=f"app.kubernetes.io/name={app}")
        .items
    )


def ready_pod(api: client.ApiClient, app: str, rs_hash: str = "") -> Any:
    return wait_for(
        client.CoreV1Api(api).list_namespaced_pod,
        lambda p: (
            is_ready(p)
            and p.metadata.deletion_timestamp is None
            and (not rs_hash or p.metadata.labels["pod-template-hash"] == rs_hash)
        ),
        namespace=NS,
        label_selector=f"app.kubernetes.io/name={app}",
    )


def restart(api: client.ApiClient, name: str, stamp: str) -> None:
    client.AppsV1Api(api).patch_namespaced_deployment(
        name,
        NS,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        },
    )


def replicasets(api: client.ApiClient, app: str) -> list[Any]:
    return list(
        client.AppsV1Api(api)
        .list_namespaced_replica_set(NS, label_selector=f"app.kubernetes.io/name={app}")
        .items
    )


def test_first_deploy_becomes_ready_with_engine_logs(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path))
    pod = ready_pod(api_client, "uptime-prober")
    (rs,) = replicasets(api_client, "uptime-prober")
    assert rs.metadata.name == f"uptime-prober-{pod.metadata.labels['pod-template-hash']}"
    assert rs.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert pod.metadata.owner_references[0].name == rs.metadata.name
    assert pod.spec.node_name == "pdwatch-embedded"
    logs = client.CoreV1Api(api_client).read_namespaced_pod_log(pod.metadata.name, NS)
    assert logs.splitlines()[:7] == [
        "Pipedreamer Engine starting...",
        "Workflow: uptime-prober v2.0",
        "DAG compiled: 4 stage(s), 4 node(s)",
        "  Stage 1: [probe-endpoints]",
        "  Stage 2: [analyze-results]",
        "  Stage 3: [format-report]",
        "  Stage 4: [notify]",
    ]
    d = wait_for(
        client.AppsV1Api(api_client).list_namespaced_deployment,
        lambda d: (
            (d.status.ready_replicas or 0) == 1
            and d.status.observed_generation == d.metadata.generation
        ),
        namespace=NS,
    )
    conditions = {c.type: (c.status, c.reason) for c in d.status.conditions}
    assert conditions["Available"] == ("True", "MinimumReplicasAvailable")
    reasons = [e.reason for e in client.CoreV1Api(api_client).list_namespaced_event(NS).items]
    for reason in (
        "ScalingReplicaSet",
        "SuccessfulCreate",
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
    ):
        assert reason in reasons


def test_restart_annotation_makes_exactly_one_new_replicaset_and_pod(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello"))
    old = ready_pod(api_client, "hello")
    restart(api_client, "hello", "2026-11-24T10:00:00.000001Z")
    new_rs = wait_for(
        client.AppsV1Api(api_client).list_namespaced_replica_set,
        lambda rs: rs.metadata.annotations["deployment.kubernetes.io/revision"] == "2",
        namespace=NS,
    )
    new_hash = new_rs.metadata.labels["pod-template-hash"]
    new = ready_pod(api_client, "hello", new_hash)
    assert new.metadata.name != old.metadata.name
    # the old pod goes only after the new one is Ready (maxSurge 1, maxUnavailable 0)
    wait_for(
        client.AppsV1Api(api_client).list_namespaced_replica_set,
        lambda rs: (
            rs.metadata.name == old.metadata.owner_references[0].name
            and (rs.status.replicas or 0) == 0
        ),
        namespace=NS,
    )
    assert len(replicasets(api_client, "hello")) == 2
    killing = wait_for_event(api_client, NS, "Killing", old.metadata.name)
    assert killing.message == "Stopping container engine"
    # the same stamp again changes nothing: no third ReplicaSet
    restart(api_client, "hello", "2026-11-24T10:00:00.000001Z")
    assert len(replicasets(api_client, "hello")) == 2


def test_unchanged_apply_creates_no_replicaset(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    bundle = bundle_of(tmp_path, "hello")
    apply_all(api_client, bundle)
    ready_pod(api_client, "hello")
    before = client.AppsV1Api(api_client).read_namespaced_deployment("hello", NS)
    apply_all(api_client, bundle)
    after = client.AppsV1Api(api_client).read_namespaced_deployment("hello", NS)
    assert after.metadata.generation == before.metadata.generation
    assert len(replicasets(api_client, "hello")) == 1


def test_missing_configmap_keeps_pod_creating_with_failed_mount(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    bundle = bundle_of(tmp_path, "hello")
    client.AppsV1Api(api_client).patch_namespaced_deployment(
        "hello", NS, bundle.deployment, field_manager="pdwatch", _content_type=APPLY
    )
    event = wait_for_event(api_client, NS, "FailedMount", "hello-")
    assert event.type == "Warning"
    name = bundle.code_snapshot["metadata"]["name"]
    assert event.message == (
        f'MountVolume.SetUp failed for volume "code" : configmap "{name}" not found'
    )
    (pod,) = pods_of(api_client, "hello")
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    client.CoreV1Api(api_client).create_namespaced_config_map(NS, bundle.code_snapshot)
    ready_pod(api_client, "hello")  # the kubelet retries and the pod starts


def test_item_key_missing_from_configmap(tmp_path: Path, api_client: client.ApiClient) -> None:
    bundle = bundle_of(tmp_path, "hello")
    cm = json.loads(json.dumps(bundle.code_snapshot))
    del cm["data"]["nodes__greet.ts"]
    client.CoreV1Api(api_client).create_namespaced_config_map(NS, cm)
    client.AppsV1Api(api_client).create_namespaced_deployment(NS, bundle.deployment)
    event = wait_for_event(api_client, NS, "FailedMount", "hello-")
    assert event.message == (
        'MountVolume.SetUp failed for volume "code" : configmap '
        "references non-existent config key: nodes__greet.ts"
    )


def test_unknown_image_err_image_pull_then_backoff(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello", image="registry.invalid/nope:1"))
    failed = wait_for_event(api_client, NS, "Failed", "hello-")
    assert failed.message.startswith(
        'Failed to pull image "registry.invalid/nope:1": rpc error: code = Unknown'
    )
    wait_for(
        client.CoreV1Api(api_client).list_namespaced_pod,
        lambda p: (
            p.status
            and p.status.container_statuses
            and p.status.container_statuses[0].state.waiting
            and p.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
        ),
        namespace=NS,
    )
    backoff = wait_for_event(api_client, NS, "BackOff", "hello-")
    assert backoff.message == 'Back-off pulling image "registry.invalid/nope:1"'
    (pod,) = pods_of(api_client, "hello")
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api_client).read_namespaced_pod_log(pod.metadata.name, NS)
    assert info.value.status == 400
    assert json.loads(info.value.body)["message"] == (
        f'container "engine" in pod "{pod.metadata.name}" is waiting to start: trying and '
        "failing to pull image"
    )


def test_broken_workflow_crash_loops_with_previous_logs(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    bundle = bundle_of(tmp_path, "hello")
    cm = json.loads(json.dumps(bundle.code_snapshot))
    cm["data"]["workflow.yaml"] = "name: hello\nversion: [oops\n"
    client.CoreV1Api(api_client).create_namespaced_config_map(NS, cm)
    client.AppsV1Api(api_client).create_namespaced_deployment(NS, bundle.deployment)
    pod = wait_for(
        client.CoreV1Api(api_client).list_namespaced_pod,
        lambda p: (
            bool(p.status and p.status.container_statuses)
            and p.status.container_statuses[0].restart_count >= 1
            and p.status.container_statuses[0].state.waiting is not None
            and p.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
        ),
        namespace=NS,
        timeout=20,
    )
    status = pod.status.container_statuses[0]
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.reason == "Error"
    assert "back-off" in status.state.waiting.message
    core = client.CoreV1Api(api_client)
    previous = core.read_namespaced_pod_log(pod.metadata.name, NS, previous=True)
    assert previous.splitlines()[0] == "Pipedreamer Engine starting..."
    assert previous.splitlines()[1].startswith("Engine failed to start: ")
    event = wait_for_event(api_client, NS, "BackOff", pod.metadata.name)
    assert event.message.startswith("Back-off restarting failed container engine in pod")


def test_missing_helper_module_fails_at_load(tmp_path: Path, api_client: client.ApiClient) -> None:
    bundle = bundle_of(tmp_path)
    cm = json.loads(json.dumps(bundle.code_snapshot))
    del cm["data"]["nodes__lib__http.ts"]  # the reference CLI's defect: helper not mounted
    deploy = json.loads(json.dumps(bundle.deployment))
    volume = deploy["spec"]["template"]["spec"]["volumes"][0]["configMap"]
    volume["items"] = [i for i in volume["items"] if i["key"] != "nodes__lib__http.ts"]
    client.CoreV1Api(api_client).create_namespaced_config_map(NS, cm)
    client.AppsV1Api(api_client).create_namespaced_deployment(NS, deploy)
    wait_for_event(api_client, NS, "BackOff", "uptime-prober-")
    (pod,) = pods_of(api_client, "uptime-prober")
    logs = client.CoreV1Api(api_client).read_namespaced_pod_log(
        pod.metadata.name, NS, previous=True
    )
    # the engine's words, and where the import is (file://<the workflow volume>/...)
    assert re.search(
        r'^Engine failed to start: TypeError: Module not found "file://\S*/workflow/nodes/lib/'
        r'http\.ts"\.\n\s+at file://\S*/workflow/nodes/probe-endpoints\.ts\b',
        logs,
        re.M,
    ), logs


def test_failing_readiness_reports_unhealthy(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    cluster.set_image("engine:unhealthy", ready=False)
    apply_all(api_client, bundle_of(tmp_path, "hello", image="engine:unhealthy"))
    event = wait_for_event(api_client, NS, "Unhealthy", "hello-")
    assert event.message == "Readiness probe failed: HTTP probe failed with statuscode: 503"
    (pod,) = pods_of(api_client, "hello")
    assert pod.status.phase == "Running" and not is_ready(pod)


def test_missing_runtime_class_gives_failed_create(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello", runtime_class="kata"))
    event = wait_for_event(api_client, NS, "FailedCreate", "hello-")
    assert event.message.startswith('Error creating: pods "hello-')
    assert event.message.endswith('is forbidden: pod rejected: RuntimeClass "kata" not found')
    d = wait_for(
        client.AppsV1Api(api_client).list_namespaced_deployment,
        lambda d: any(c.type == "ReplicaFailure" for c in d.status.conditions or []),
        namespace=NS,
    )
    failure = next(c for c in d.status.conditions if c.type == "ReplicaFailure")
    assert failure.reason == "FailedCreate"


def test_top_level_console_log_shows_node_code(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    bundle = bundle_of(tmp_path, "hello")
    (tmp_path / "hello" / "nodes" / "greet.ts").write_text(
        'console.log("greet v2 loaded");\nexport default () => 1;\n'
    )
    apply_all(api_client, bundle_of(tmp_path, "hello"))
    pod = ready_pod(api_client, "hello")
    logs = client.CoreV1Api(api_client).read_namespaced_pod_log(pod.metadata.name, NS)
    assert "greet v2 loaded" in logs.splitlines()
    assert bundle.content_hash  # the first bundle was never applied


def test_log_options(tmp_path: Path, api_client: client.ApiClient) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello"))
    pod = ready_pod(api_client, "hello")
    core = client.CoreV1Api(api_client)
    name = pod.metadata.name
    assert core.read_namespaced_pod_log(name, NS, tail_lines=2).splitlines() == [
        "  POST /run    — trigger workflow execution",
        "  GET  /health — health check",
    ]
    stamped = core.read_namespaced_pod_log(name, NS, timestamps=True).splitlines()[0]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z Pipedreamer Engine starting\.\.\.", stamped
    ), stamped
    assert core.read_namespaced_pod_log(name, NS, since_seconds=3600).startswith("Pipedreamer")
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log(name, NS, previous=True)
    assert json.loads(info.value.body)["message"] == (
        f'previous terminated container "engine" in pod "{name}" not found'
    )
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod_log(name, NS, container="sidecar")
    assert info.value.status == 400


def test_follow_streams_new_lines_and_ends_with_the_container(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello"))
    pod = ready_pod(api_client, "hello")
    core = client.CoreV1Api(api_client)
    stream = core.read_namespaced_pod_log(
        pod.metadata.name, NS, follow=True, _preload_content=False
    )
    lines = stream.stream(amt=None)
    received = b""
    while b"Workflow server listening" not in received:
        received += next(lines)
    status, _ = proxy_run(cluster, "hello", {"name": "stream"})
    assert status == 200
    while b"[greet] INFO" not in received:
        received += next(lines)
    client.CoreV1Api(api_client).delete_namespaced_pod(pod.metadata.name, NS)
    received += b"".join(lines)  # ends when the container stops
    assert received.decode().splitlines()[-1] == "[greet] INFO greeting stream"


def proxy_run(cluster: EmbeddedCluster, service: str, body: Any) -> tuple[int, Any]:
    http = urllib3.PoolManager()
    response = http.request(
        "POST",
        f"{cluster.url}/api/v1/namespaces/{NS}/services/{service}:8080/proxy/run",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    return response.status, json.loads(response.data)


def test_service_proxy_reaches_the_engine(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    status, body = proxy_run(cluster, "uptime-prober", {})
    assert (status, body["message"]) == (404, 'services "uptime-prober" not found')
    apply_all(api_client, bundle_of(tmp_path))
    ready_pod(api_client, "uptime-prober")
    status, body = proxy_run(cluster, "uptime-prober", {"trigger": "every-five-minutes"})
    # the engine ran every node, in the DAG's order (whether example.com answers depends
    # on this machine's network: the probe records either)
    assert (status, body["success"], body["errors"]) == (200, True, {}), body
    timings = body["timing"]["nodeTimings"]
    order = sorted(timings, key=lambda n: timings[n]["startedAt"])
    assert order == ["probe-endpoints", "analyze-results", "format-report", "notify"]
    probed = body["outputs"]["probe-endpoints"]["results"]
    assert [r["url"] for r in probed] == ["https://example.com", "https://example.org"]


def test_service_without_ready_pods_has_no_endpoints(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    cluster.set_image("engine:unhealthy", ready=False)
    apply_all(api_client, bundle_of(tmp_path, "hello", image="engine:unhealthy"))
    wait_for_event(api_client, NS, "Unhealthy", "hello-")
    status, body = proxy_run(cluster, "hello", {})
    assert (status, body["reason"], body["message"]) == (
        503,
        "ServiceUnavailable",
        'no endpoints available for service "hello"',
    )


def test_deleting_the_deployment_removes_replicasets_and_pods(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    apply_all(api_client, bundle_of(tmp_path, "hello"))
    ready_pod(api_client, "hello")
    client.AppsV1Api(api_client).delete_namespaced_deployment("hello", NS)
    assert replicasets(api_client, "hello") == []
    core = client.CoreV1Api(api_client)
    from kubernetes import watch

    if pods_of(api_client, "hello"):
        listed = core.list_namespaced_pod(NS)
        for event in watch.Watch().stream(
            core.list_namespaced_pod,
            NS,
            timeout_seconds=10,
            resource_version=listed.metadata.resource_version,
        ):
            if event["type"] == "DELETED" and not pods_of(api_client, "hello"):
                break
    assert pods_of(api_client, "hello") == []


def test_a_replica_set_that_cannot_create_its_pod_backs_off(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A quota that allows no pod: the ReplicaSet tries again after 5 ms, doubling each time
    (the controller's rate-limited queue), not on each change of its own status (issue 29
    §11: about 300 writes a second, 131,000 Events in 4 minutes). The first 8 failures take
    at least 5+10+…+320 ms = 635 ms; they took about 20 ms before."""
    import time

    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    labels = {"app": "refused"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "refused"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "pipedreamer-engine:latest"}]},
                },
            },
        },
    )

    def failed_creates() -> int:
        items = core.list_namespaced_event(namespace).items
        return sum(e.count or 1 for e in items if e.reason == "FailedCreate")

    while failed_creates() == 0:
        time.sleep(0.005)
    first = time.monotonic()
    while failed_creates() < 8:
        assert time.monotonic() - first < 30
        time.sleep(0.01)
    assert time.monotonic() - first >= 0.5
    (rs,) = apps.list_namespaced_replica_set(namespace).items
    assert int(rs.metadata.resource_version) > 0  # the ReplicaSet exists and is not churned
