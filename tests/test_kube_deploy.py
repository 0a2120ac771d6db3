"""The cluster layer against a cluster (embedded, or real: tests/target.py): deploy
cycles, one rollout per change, following the new pod, failures with the cluster's own
reasons, logs, teardown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop import events
from devloop.kube import informers
from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle, rollout_restart, settle
from devloop.kube.errors import Timeout
from devloop.kube.logs import tail_logs
from devloop.kube.progress import waiting_key
from devloop.kube.rollout import RolloutWatch
from devloop.oneshot import teardown
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster, Rule
from tests import target
from tests.helpers import STUCK_AT_LOAD, node_code
from tests.kubewait import rollout_complete, wait_for
from tests.target import machine_only, patience, render_options, sim_only

EXAMPLES = Path(__file__).parent.parent / "examples"


class Recorder:
    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def __call__(self, event: events.Event) -> None:
        self.events.append(event)

    def of(self, kind: type[events.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def copy_example(tmp_path: Path, name: str = "hello") -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target)
    return target


def bundle_of(kube: Kube, directory: Path, **options: Any) -> Bundle:
    """Rendered for the test's namespace (and the real-cluster mode's image and
    RuntimeClass), with `options` on top."""
    result = render(directory, replace(render_options(kube.namespace), **options))
    assert isinstance(result, Bundle), result
    return result


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str) -> Kube:
    return Kube(api_client, namespace)


async def replica_sets(kube: Kube, app: str) -> list[dict[str, Any]]:
    listed = await kube.list("ReplicaSet", label_selector=f"app.kubernetes.io/name={app}")
    return list(listed["items"])


async def test_first_deploy_follows_the_new_pod_to_ready(tmp_path: Path, kube: Kube) -> None:
    rec = Recorder()
    bundle = bundle_of(kube, copy_example(tmp_path))
    result = await deploy_cycle(kube, bundle, rec, RestartStamps())
    assert result.ok and result.applied and result.restarted
    (applied,) = rec.of(events.Applied)
    # the code, the immutable copy the pods mount, the Deployment, then the rest
    snapshot = f"ConfigMap/{bundle.code_snapshot['metadata']['name']}"
    assert applied.objects == (
        "ConfigMap/hello-code",
        snapshot,
        "Deployment/hello",
        "Service/hello",
    )
    (restart,) = rec.of(events.RestartTriggered)
    assert restart.via == "template"  # a new Deployment rolls out by itself
    steps = [e.step for e in rec.of(events.PodProgress)]
    assert steps[:2] == ["created", "scheduled"] and "started" in steps
    (ready,) = rec.of(events.PodReady)
    assert result.rollout is not None and ready.pod == result.rollout.pod


async def test_code_change_restarts_once_with_a_new_replicaset(tmp_path: Path, kube: Kube) -> None:
    directory = copy_example(tmp_path)
    stamps = RestartStamps()
    first = await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), stamps)
    (directory / "nodes" / "greet.ts").write_text(node_code("v2"))
    rec = Recorder()
    changed = bundle_of(kube, directory)
    second = await deploy_cycle(kube, changed, rec, stamps)
    assert second.ok
    (applied,) = rec.of(events.Applied)
    # only what changed: the code, its immutable copy, and the pod template that mounts it
    snapshot = f"ConfigMap/{changed.code_snapshot['metadata']['name']}"
    assert applied.objects == ("ConfigMap/hello-code", snapshot, "Deployment/hello")
    (restart,) = rec.of(events.RestartTriggered)
    assert restart.via == "template"
    assert len(await replica_sets(kube, "hello")) == 2
    assert second.rollout and first.rollout
    assert second.rollout.pod != first.rollout.pod
    assert second.rollout.replica_set != first.rollout.replica_set
    logs = await kube.pod_log(second.rollout.pod)
    assert "v2" in logs.splitlines()


async def test_unchanged_redeploy_applies_and_restarts_nothing(tmp_path: Path, kube: Kube) -> None:
    bundle = bundle_of(kube, copy_example(tmp_path))
    await deploy_cycle(kube, bundle, Recorder(), RestartStamps())
    await rollout_complete(kube, "hello")
    before = await kube.get("ConfigMap", "hello-code")
    rec = Recorder()
    result = await deploy_cycle(kube, bundle, rec, RestartStamps())
    assert not result.applied and not result.restarted
    assert [type(e) for e in rec.events] == [events.Unchanged]
    after = await kube.get("ConfigMap", "hello-code")
    assert before and after
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert len(await replica_sets(kube, "hello")) == 1


async def test_two_deploys_within_one_second_give_two_rollouts(tmp_path: Path, kube: Kube) -> None:
    directory = copy_example(tmp_path)
    stamps = RestartStamps()
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), stamps)
    for n in (2, 3):
        (directory / "nodes" / "greet.ts").write_text(node_code(f"v{n}"))
        result = await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), stamps)
        assert result.ok
    assert len(await replica_sets(kube, "hello")) == 3


def test_restart_stamps_are_unique_within_the_same_instant() -> None:
    stamps = RestartStamps()
    moment = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    values = [stamps.next(moment) for _ in range(3)]
    assert values == [
        "2026-11-24T12:00:00.000000Z",
        "2026-11-24T12:00:00.000001Z",
        "2026-11-24T12:00:00.000002Z",
    ]


@machine_only("a second engine image (set_image)")
async def test_image_change_rolls_once_without_a_restart_patch(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    directory = copy_example(tmp_path)
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    cluster.set_image("pipedreamer-engine:2")
    rec = Recorder()
    result = await deploy_cycle(
        kube, bundle_of(kube, directory, image="pipedreamer-engine:2"), rec, RestartStamps()
    )
    assert result.ok
    assert [e.via for e in rec.of(events.RestartTriggered)] == ["template"]
    deployment = await kube.get("Deployment", "hello")
    assert deployment is not None
    annotations = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    assert "kubectl.kubernetes.io/restartedAt" not in annotations
    assert len(await replica_sets(kube, "hello")) == 2


async def test_field_changed_by_another_manager_is_taken_back(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient
) -> None:
    directory = copy_example(tmp_path)
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    # someone's `kubectl scale`: another field manager than pdwatch
    apps = client.AppsV1Api(api_client)
    await asyncio.to_thread(
        apps.patch_namespaced_deployment, "hello", kube.namespace, {"spec": {"replicas": 3}}
    )
    (directory / "nodes" / "greet.ts").write_text(node_code("edit"))
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    deployment = await kube.get("Deployment", "hello")
    assert deployment is not None and deployment["spec"]["replicas"] == 1


async def test_removed_cron_trigger_and_secret_are_pruned(tmp_path: Path, kube: Kube) -> None:
    directory = copy_example(tmp_path, "uptime-prober")
    (directory / ".secrets.yaml").write_text("slack:\n  webhook_url: https://hooks/x\n")
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    assert await kube.get("CronJob", "uptime-prober-cron") is not None
    text = (directory / "workflow.yaml").read_text()
    (directory / "workflow.yaml").write_text(
        text.replace(
            '  - type: cron\n    name: every-five-minutes\n    schedule: "*/5 * * * *"\n', ""
        )
    )
    (directory / ".secrets.yaml").unlink()
    rec = Recorder()
    await deploy_cycle(kube, bundle_of(kube, directory), rec, RestartStamps())
    (applied,) = rec.of(events.Applied)
    assert set(applied.pruned) == {"CronJob/uptime-prober-cron", "Secret/uptime-prober-secrets"}
    assert await kube.get("CronJob", "uptime-prober-cron") is None


async def test_secret_change_alone_restarts(tmp_path: Path, kube: Kube) -> None:
    directory = copy_example(tmp_path)
    (directory / ".secrets.yaml").write_text("token: one\n")
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    (directory / ".secrets.yaml").write_text("token: two\n")
    rec = Recorder()
    result = await deploy_cycle(kube, bundle_of(kube, directory), rec, RestartStamps())
    assert result.restarted and [e.via for e in rec.of(events.RestartTriggered)] == ["template"]
    (applied,) = rec.of(events.Applied)
    assert applied.objects == ("Secret/hello-secrets", "Deployment/hello")


# --- failures, with the cluster's own reasons ------------------------------------------------


async def test_unknown_image_fails_with_err_image_pull(tmp_path: Path, kube: Kube) -> None:
    rec = Recorder()
    result = await deploy_cycle(
        kube,
        bundle_of(kube, copy_example(tmp_path), image="registry.invalid/nope:1"),
        rec,
        RestartStamps(),
    )
    assert not result.ok
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason in ("ErrImagePull", "ImagePullBackOff")
    assert "registry.invalid/nope:1" in failure.message


async def test_a_crash_is_reported_at_its_first_exit_with_the_last_log_lines(
    tmp_path: Path, kube: Kube
) -> None:
    """A real kubelet restarts at once and shows CrashLoopBackOff only after the second
    exit: the first termination is the failure (exit code, reason, last lines)."""
    directory = copy_example(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(
        'console.log("about to fail");\nthrow new Error("boom at load");\n'
        "export default async function run() {}\n"
    )
    rec = Recorder()
    result = await deploy_cycle(kube, bundle_of(kube, directory), rec, RestartStamps())
    assert not result.ok
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason == "Error"
    assert failure.message == "the engine exited with code 1"
    assert "about to fail" in failure.last_logs
    assert "Engine failed to start: Error: boom at load" in failure.last_logs


async def test_failed_create_is_shown_as_waiting_until_the_timeout(
    tmp_path: Path, kube: Kube
) -> None:
    """FailedCreate is often transient (a ServiceAccount not there yet): waiting, not failed."""
    rec = Recorder()
    result = await deploy_cycle(
        kube,
        bundle_of(kube, copy_example(tmp_path), runtime_class="kata"),
        rec,
        RestartStamps(),
        rollout_timeout=patience(2),
    )
    assert not result.ok
    waiting = [e.detail for e in rec.of(events.PodProgress) if e.step == "waiting"]
    assert waiting and waiting[0].startswith("FailedCreate: ")
    assert waiting[0].endswith('pod rejected: RuntimeClass "kata" not found')
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason == "Timeout"
    last = failure.message.split("; last: ", 1)[1]  # what it was waiting on: the latest
    assert waiting_key(last) == waiting_key(waiting[-1])  # retry, another generated name


@machine_only("an engine image that never gets Ready (set_image)")
async def test_failing_readiness_times_out_naming_the_probe(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.set_image("engine:unhealthy", ready=False)
    rec = Recorder()
    result = await deploy_cycle(
        kube,
        bundle_of(kube, copy_example(tmp_path), image="engine:unhealthy"),
        rec,
        RestartStamps(),
        # before the liveness probe stops it: 5 s + 3 x 10 s, 1.25 s at the tests' scale
        # (the node's clock, the same in both modes: no patience)
        rollout_timeout=1.0,
    )
    assert not result.ok
    warnings = [e.detail for e in rec.of(events.PodProgress) if e.step == "warning"]
    assert warnings and warnings[0] == (
        "Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
    )
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason == "Timeout"
    assert failure.message.endswith(f"; last: {warnings[-1]}")


async def test_a_new_pod_deleted_while_followed_is_not_a_crash(tmp_path: Path, kube: Kube) -> None:
    """A pod deleted during the rollout (kubectl delete pod) stops with its container
    terminated (exit 143) before it goes, as a real kubelet reports it; the follower must
    not call that a crash, and goes on with the pod its ReplicaSet makes instead."""
    directory = copy_example(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)  # not Ready for a while
    rec = Recorder()
    deleted: list[str] = []
    tasks: list[asyncio.Task[bool]] = []

    def delete_first(pod: str) -> None:
        if not deleted:
            deleted.append(pod)
            tasks.append(asyncio.create_task(kube.delete("Pod", pod)))

    result = await deploy_cycle(
        kube,
        bundle_of(kube, directory),
        rec,
        RestartStamps(),
        rollout_timeout=patience(3),
        on_pod_started=delete_first,
    )
    await asyncio.gather(*tasks)
    assert not result.ok and result.rollout is not None and result.rollout.failure is not None
    failure = result.rollout.failure
    # the replacement timed out, or its liveness probe had it restarted: never a crash
    # of the deleted pod
    assert failure.reason in ("Timeout", "Unhealthy"), failure
    created = [e.pod for e in rec.of(events.PodProgress) if e.step == "created"]
    assert deleted and created[0] == deleted[0] and len(set(created)) == 2
    assert failure.pod != deleted[0]


async def test_an_engine_stuck_loading_is_restarted_by_its_liveness_probe(
    tmp_path: Path, kube: Kube
) -> None:
    """A node that waits at load (here a ten-minute timer) keeps the engine from serving:
    the readiness probe fails, then the liveness probe (5 s, then every 10 s, 3 failures)
    has the kubelet stop it to restart it. That is what pdwatch says, not the exit code
    it was stopped with (143)."""
    directory = copy_example(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)
    rec = Recorder()
    result = await deploy_cycle(
        kube, bundle_of(kube, directory), rec, RestartStamps(), rollout_timeout=patience(20)
    )
    assert not result.ok
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason == "Unhealthy", failure
    assert failure.message.startswith(
        'the kubelet restarted the engine: Liveness probe failed: Get "http://'
    ), failure.message
    assert ':8080/health": dial tcp ' in failure.message
    assert failure.message.endswith("connect: connection refused"), failure.message
    assert "waiting at load" in failure.last_logs


async def test_failed_mount_is_reported(tmp_path: Path, kube: Kube) -> None:
    from devloop.kube.rollout import follow_rollout

    bundle = bundle_of(kube, copy_example(tmp_path))
    deployment = await kube.apply(bundle.deployment)  # the ConfigMap was never applied
    rec = Recorder()
    result = await follow_rollout(kube, deployment, rec, timeout=patience(2))
    assert not result.ok and result.failure is not None
    assert result.failure.reason == "Timeout"
    waiting = [e.detail for e in rec.of(events.PodProgress) if e.step == "waiting"]
    name = bundle.code_snapshot["metadata"]["name"]
    assert waiting == [
        f'FailedMount: MountVolume.SetUp failed for volume "code" : configmap "{name}" not found'
    ]


class ScriptedWatch(RolloutWatch):
    """The follower's input in a chosen order: the orders two real watches can interleave
    in, which the embedded cluster (one process, one loop) cannot be made to produce."""

    def __init__(self, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.queue = asyncio.Queue()
        self.tasks = []
        self.subscriptions = []
        for item in items:
            self.queue.put_nowait(item)


TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c"}]}}
DEPLOYMENT = {
    "metadata": {"name": "x", "uid": "d-uid", "namespace": "default"},
    "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": TEMPLATE},
}


def new_rs(hash_: str = "abc") -> dict[str, Any]:
    template = {**TEMPLATE, "metadata": {"labels": {"app": "x", "pod-template-hash": hash_}}}
    return {
        "metadata": {
            "name": f"x-{hash_}",
            "uid": "rs-uid",
            "labels": {"app": "x", "pod-template-hash": hash_},
            "ownerReferences": [{"uid": "d-uid", "controller": True}],
        },
        "spec": {"template": template},
    }


def pod(name: str, hash_: str, ready: bool = False) -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "True"}]
    if ready:
        conditions.append({"type": "Ready", "status": "True"})
    return {
        "metadata": {"name": name, "uid": f"{name}-uid", "labels": {"pod-template-hash": hash_}},
        "spec": {"nodeName": "node"},
        "status": {"conditions": conditions},
    }


def event(pod_name: str, reason: str, message: str, type_: str = "Warning") -> dict[str, Any]:
    return {
        "involvedObject": {"name": pod_name, "uid": f"{pod_name}-uid"},
        "reason": reason,
        "message": message,
        "type": type_,
    }


async def test_what_arrives_before_the_new_replica_set_is_not_lost(kube: Kube) -> None:
    from devloop.kube.rollout import follow_rollout

    script = [
        ("pod", "ADDED", pod("x-old-1", "old", ready=True)),  # the pod being replaced
        ("event", "ADDED", event("x-abc-1", "FailedMount", "configmap gone")),
        ("pod", "ADDED", pod("x-abc-1", "abc")),
        ("rs", "ADDED", new_rs()),
        ("pod", "MODIFIED", pod("x-abc-1", "abc", ready=True)),
    ]
    rec = Recorder()
    result = await follow_rollout(kube, DEPLOYMENT, rec, 5, watch=ScriptedWatch(script))
    assert result.ok and result.pod == "x-abc-1"
    steps = [(e.pod, e.step) for e in rec.of(events.PodProgress)]
    # never the old pod; the event held until its pod was seen
    assert steps == [("x-abc-1", "created"), ("x-abc-1", "waiting"), ("x-abc-1", "scheduled")]


async def test_an_event_before_its_pod_is_kept_until_the_pod_is_seen(kube: Kube) -> None:
    from devloop.kube.rollout import follow_rollout

    script = [
        ("rs", "ADDED", new_rs()),
        ("event", "ADDED", event("x-abc-1", "Pulled", "already present", "Normal")),
        ("pod", "ADDED", pod("x-abc-1", "abc")),
        ("pod", "MODIFIED", pod("x-abc-1", "abc", ready=True)),
    ]
    rec = Recorder()
    result = await follow_rollout(kube, DEPLOYMENT, rec, 5, watch=ScriptedWatch(script))
    assert result.ok and result.pod == "x-abc-1" and result.replica_set == "x-abc"
    steps = [e.step for e in rec.of(events.PodProgress)]
    assert steps == ["created", "pulled", "scheduled"]


async def test_restart_deadline_when_the_api_is_unreachable(
    cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.stop_server()
    with pytest.raises(Timeout) as info:
        await rollout_restart(kube, "hello", "stamp", timeout=0.5)
    assert "context deadline exceeded after 0.5s" in str(info.value)
    assert "cluster unreachable" in str(info.value)


# --- logs ------------------------------------------------------------------------------------


async def test_tail_from_the_first_line_survives_dropped_streams(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    result = await deploy_cycle(
        kube, bundle_of(kube, copy_example(tmp_path)), Recorder(), RestartStamps()
    )
    assert result.rollout is not None
    pod = result.rollout.pod
    lines: list[str] = []
    got_line = asyncio.Event()

    def emit(event: events.Event) -> None:
        if isinstance(event, events.LogLine):
            lines.append(event.text)
            got_line.set()

    stop = asyncio.Event()
    task = asyncio.create_task(tail_logs(kube, pod, emit, stop, retry_s=0.05))
    while "  GET  /health — health check" not in lines:  # the last start-up line
        got_line.clear()
        await asyncio.wait_for(got_line.wait(), 10)
    start_lines = list(lines)
    assert start_lines[0] == "Pipedreamer Engine starting..."
    cluster.drop_streams()
    # The engine contract says a run logs, not what: wait for anything after the start.
    status, _ = await kube.proxy_post("hello", 8080, "run", {"name": "again"})
    assert status == 200
    while len(lines) == len(start_lines):
        got_line.clear()
        await asyncio.wait_for(got_line.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert lines[: len(start_lines)] == start_lines
    # nothing repeated after the reconnect
    assert not set(start_lines) & set(lines[len(start_lines) :]), lines


@sim_only("log rotation (the embedded cluster's kubelet rotates on request)")
async def test_a_log_rotated_while_the_stream_was_down_resumes_without_a_silent_gap(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    """The stream drops; while it is down the kubelet rotates the log and the engine logs
    more. The reopened stream serves only the new file, shorter than what was shown: its
    lines are shown, with a word that lines may be missing (issue 24 §7: counting lines,
    they were taken for ones already shown)."""
    result = await deploy_cycle(
        kube, bundle_of(kube, copy_example(tmp_path)), Recorder(), RestartStamps()
    )
    assert result.rollout is not None
    pod = result.rollout.pod
    seen: list[events.Event] = []
    got = asyncio.Event()

    def emit(event: events.Event) -> None:
        seen.append(event)
        got.set()

    def texts() -> list[str]:
        return [e.text for e in seen if isinstance(e, events.LogLine)]

    async def until(check: Callable[[], bool]) -> None:
        while not check():
            got.clear()
            await asyncio.wait_for(got.wait(), patience(10))

    stop = asyncio.Event()
    task = asyncio.create_task(tail_logs(kube, pod, emit, stop, retry_s=0.05))
    await until(lambda: "  GET  /health — health check" in texts())
    shown_before = len(texts())
    cluster.add_fault(Rule(method="GET", path_part="/log", count=1000, status=0))
    cluster.drop_streams()
    while cluster.held_requests == 0:  # the tail is asking again, and waits
        await asyncio.sleep(0.02)
    cluster.rotate_logs(pod)
    status, _ = await kube.proxy_post("hello", 8080, "run", {"name": "after-rotation"})
    assert status == 200
    cluster.clear_faults()
    await until(lambda: len(texts()) > shown_before)
    stop.set()
    await asyncio.wait_for(task, 5)
    warnings = [e.message for e in seen if isinstance(e, events.Warning)]
    assert any(f"the log of pod {pod} was rotated" in w for w in warnings), warnings
    assert not set(texts()[:shown_before]) & set(texts()[shown_before:])


async def test_stopping_a_tail_whose_log_request_hangs_ends_it_at_once(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    """Quit while the log request waits for its headers (the pod's container is starting,
    the API server is slow): the tail ends when told, not when the server answers. It
    used to wait for the server, holding each quit for the loop's whole grace period."""
    result = await deploy_cycle(
        kube, bundle_of(kube, copy_example(tmp_path)), Recorder(), RestartStamps()
    )
    assert result.rollout is not None
    cluster.add_fault(Rule(method="GET", path_part="/log", count=10, status=0))
    stop = asyncio.Event()
    task = asyncio.create_task(tail_logs(kube, result.rollout.pod, Recorder(), stop))
    while cluster.held_requests == 0:  # condition: the follow request is being held
        await asyncio.sleep(0.01)
    stop.set()
    done, _ = await asyncio.wait({task}, timeout=10)
    cluster.clear_faults()
    assert task in done


async def test_trigger_through_the_service_proxy(tmp_path: Path, kube: Kube) -> None:
    await deploy_cycle(kube, bundle_of(kube, copy_example(tmp_path)), Recorder(), RestartStamps())
    status, body = await kube.proxy_post("hello", 8080, "run", {"name": "proxy"})
    # The engine contract: 200 and the run's JSON result (what it holds is the nodes').
    assert status == 200 and isinstance(body, dict), (status, body)


# --- teardown --------------------------------------------------------------------------------


async def test_down_removes_exactly_the_labelled_objects(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient
) -> None:
    directory = copy_example(tmp_path, "uptime-prober")
    (directory / ".secrets.yaml").write_text("a: b\n")
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "unrelated"}, "data": {}}
    )
    core.create_namespaced_secret(
        kube.namespace, {"metadata": {"name": "hello-secrets"}, "data": {}}
    )
    deleted = await teardown(kube, "uptime-prober")
    assert sorted(deleted) == [
        "ConfigMap/uptime-prober-code",
        "CronJob/uptime-prober-cron",
        "Deployment/uptime-prober",
        "Secret/uptime-prober-secrets",
        "Service/uptime-prober",
    ]
    assert await teardown(kube, "uptime-prober") == []  # missing objects are skipped
    # same name, no labels: not pdwatch's, never deleted
    assert await teardown(kube, "hello") == []
    assert await kube.get("Secret", "hello-secrets") is not None
    assert await kube.get("ConfigMap", "unrelated") is not None


async def test_a_stream_closed_while_its_answer_is_awaited_ends_at_once() -> None:
    """A stream whose server never answers (an API server hung mid-request) is ended by
    close() at once: its iteration returns and its task is done, with nothing left running
    (there is no thread to abandon)."""
    connected = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # reads the request and never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    kube = Kube(client.Configuration(host=f"http://127.0.0.1:{port}"), "default")
    try:
        stream = kube.follow_log("hung")
        await connected.wait()
        lines: list[str] = []

        async def read() -> None:
            lines.extend([line async for line in stream])

        reader = asyncio.create_task(read())
        await asyncio.sleep(0)
        stream.close()
        await asyncio.wait_for(reader, 5)
        await asyncio.wait({stream.task}, timeout=5)
        assert lines == [] and stream.task.done()
    finally:
        await kube.close()
        server.close()
        await server.wait_closed()


# --- rollouts as a real controller runs them (issue 16 §7) ------------------------------


async def test_a_paused_deployment_is_said_with_the_command_that_resumes_it(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient
) -> None:
    directory = copy_example(tmp_path)
    await deploy_cycle(kube, bundle_of(kube, directory), Recorder(), RestartStamps())
    await asyncio.to_thread(
        client.AppsV1Api(api_client).patch_namespaced_deployment,
        "hello",
        kube.namespace,
        {"spec": {"paused": True}},
        field_manager="kubectl-rollout",
    )
    (directory / "nodes" / "greet.ts").write_text(node_code("while paused"))
    rec = Recorder()
    result = await deploy_cycle(
        kube, bundle_of(kube, directory), rec, RestartStamps(), rollout_timeout=patience(10)
    )
    assert not result.ok
    (failure,) = rec.of(events.RolloutFailed)
    assert failure.reason == "Paused"
    assert failure.message.endswith(f"kubectl rollout resume deployment/hello -n {kube.namespace}")


async def test_a_recreate_rollout_is_followed_to_the_new_pod(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient
) -> None:
    """strategy Recreate: the old pod goes first, then the new one comes."""
    from devloop.kube.rollout import follow_rollout

    bundle = bundle_of(kube, copy_example(tmp_path))
    await kube.apply(bundle.code_snapshot)
    recreate = json.loads(json.dumps(bundle.deployment))
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    first = await follow_rollout(kube, await kube.apply(recreate), Recorder(), timeout=patience(10))
    assert first.ok
    recreate["spec"]["template"]["metadata"]["annotations"]["x"] = "2"
    rec = Recorder()
    second = await follow_rollout(kube, await kube.apply(recreate), rec, timeout=patience(10))
    assert second.ok and second.pod != first.pod
    assert await kube.get("Pod", first.pod) is None  # gone before the new one was Ready


async def test_progress_deadline_exceeded_ends_the_follow(tmp_path: Path, kube: Kube) -> None:
    from devloop.kube.rollout import follow_rollout

    directory = copy_example(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)  # never Ready in time
    bundle = bundle_of(kube, directory)
    await kube.apply(bundle.code_snapshot)
    deployment = json.loads(json.dumps(bundle.deployment))
    deployment["spec"]["progressDeadlineSeconds"] = 4  # 0.2 s at the tests' time scale
    # only the deadline ends it: the liveness probe (on the node's scaled clock) would
    # restart the stuck engine before a real controller's unscaled 4 s
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    rec = Recorder()
    result = await follow_rollout(kube, await kube.apply(deployment), rec, timeout=patience(20))
    assert not result.ok and result.failure is not None
    assert result.failure.reason == "ProgressDeadlineExceeded"
    assert result.failure.message.endswith("has timed out progressing.")


async def test_a_field_pdwatch_stops_setting_is_removed(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """--runtime-class RC, then --runtime-class "" (pdwatch's own advice when RC is
    missing): the second deploy is not "unchanged"; the field leaves the Deployment, by one
    rollout (issue 24 §6)."""
    admin = target.direct_client(target.REAL) if target.REAL else api_client  # cluster-wide
    node = client.NodeV1Api(admin)
    rc = f"pdwatch-{namespace}"[:63]
    node.create_runtime_class({"metadata": {"name": rc}, "handler": "runc"})
    try:
        directory = copy_example(tmp_path)
        first = await deploy_cycle(
            kube, bundle_of(kube, directory, runtime_class=rc), Recorder(), RestartStamps()
        )
        assert first.ok
        deployment = await kube.get("Deployment", "hello")
        assert deployment is not None
        assert deployment["spec"]["template"]["spec"]["runtimeClassName"] == rc
        rec = Recorder()
        second = await deploy_cycle(
            kube, bundle_of(kube, directory, runtime_class=""), rec, RestartStamps()
        )
        assert second.ok and second.restarted, rec.events
        assert not rec.of(events.Unchanged)
        deployment = await kube.get("Deployment", "hello")
        assert deployment is not None
        assert "runtimeClassName" not in deployment["spec"]["template"]["spec"]
        await rollout_complete(kube, "hello")
        rec = Recorder()
        third = await deploy_cycle(
            kube, bundle_of(kube, directory, runtime_class=""), rec, RestartStamps()
        )
        assert not third.applied and rec.of(events.Unchanged), rec.events
    finally:
        node.delete_runtime_class(rc)


@pytest.mark.parametrize("answers", [1, 3])
async def test_a_410_on_the_pod_list_during_a_rollout_is_listed_again(
    tmp_path: Path, kube: Kube, cluster: EmbeddedCluster, answers: int
) -> None:
    """The pods' list (or watch request) answered 410 Gone while the rollout is followed:
    the list is made again and the new pod followed to Ready (issue 24 §7); it ended the
    cycle with the 410 before."""
    cluster.add_fault(Rule(method="GET", path_part="/pods", count=answers, status=410))
    rec = Recorder()
    result = await deploy_cycle(kube, bundle_of(kube, copy_example(tmp_path)), rec, RestartStamps())
    assert result.ok, rec.events
    assert rec.of(events.PodReady)


async def test_a_pod_that_cannot_be_created_is_shown_with_the_clusters_reason_rate_limited(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """A quota that allows no pod: the ReplicaSet retries, each FailedCreate naming a new
    generated pod; the reason is shown, not one line per retry (issue 24 §7: a flood of
    hundreds), and the timeout names it."""
    core = client.CoreV1Api(api_client)
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    rec = Recorder()
    bundle = bundle_of(kube, copy_example(tmp_path))
    result = await deploy_cycle(kube, bundle, rec, RestartStamps(), rollout_timeout=patience(6))
    assert not result.ok
    waiting = [e for e in rec.of(events.PodProgress) if e.step == "waiting"]
    assert 1 <= len(waiting) <= 2, waiting  # one per 10 s at most, whatever the retries
    assert "FailedCreate" in waiting[0].detail and "exceeded quota: no-pods" in waiting[0].detail
    (failed,) = rec.of(events.RolloutFailed)
    assert "last: FailedCreate" in failed.message and "exceeded quota" in failed.message


async def test_a_complete_rollout_without_a_ready_pod_follows_the_replacement(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """The serving pod is deleted and the Deployment's status still says complete (the
    controllers have not caught up): the cycle follows the replacement to Ready instead of
    ending with no pod to show (seen once in CI against the real control plane: the view
    kept the deleted pod and never showed its replacement's logs)."""
    first = await deploy_cycle(
        kube, bundle_of(kube, copy_example(tmp_path)), Recorder(), RestartStamps()
    )
    assert first.ok and first.rollout is not None
    await rollout_complete(kube, "hello")
    stale = await kube.get("Deployment", "hello")  # complete, as the status was
    assert stale is not None
    deleted = await asyncio.to_thread(
        client.CoreV1Api(api_client).delete_namespaced_pod, first.rollout.pod, namespace
    )
    # the session's pod watch has seen it (a cycle comes after a save's debounce)
    await informers.of(kube).informer("Pod").reached(deleted.metadata.resource_version)
    rec = Recorder()
    result = await settle(kube, stale, rec, False, patience(20), None, "hash")
    assert result.rollout is not None and result.rollout.ok, rec.events
    assert result.rollout.pod != first.rollout.pod


async def test_a_container_without_a_readiness_probe_gets_no_readiness_failures(
    tmp_path: Path, kube: Kube
) -> None:
    """An engine that waits at load, with only a liveness probe: its liveness failures are
    reported, and no "Readiness probe failed" is invented (issue 29 §11: the embedded
    kubelet probed readiness whether or not the pod asked for it). Read from the cluster's
    Events: on a real kubelet the pod is Ready once running, and the cycle ends there."""
    directory = copy_example(tmp_path)
    (directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)
    bundle = bundle_of(kube, directory)
    del bundle.deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    cycle = asyncio.create_task(
        deploy_cycle(kube, bundle, Recorder(), RestartStamps(), rollout_timeout=patience(30))
    )
    try:
        deadline = asyncio.get_running_loop().time() + patience(30)
        while True:
            messages = [
                str(e.get("message", ""))
                for e in (await kube.list("Event"))["items"]
                if e.get("reason") == "Unhealthy"
            ]
            if any(m.startswith("Liveness probe failed") for m in messages):
                break
            assert asyncio.get_running_loop().time() < deadline, messages
            await asyncio.sleep(0.1)
        assert not any(m.startswith("Readiness probe failed") for m in messages), messages
    finally:
        cycle.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await cycle


async def test_a_cron_trigger_s_curl_reaches_the_workflow_through_its_service(
    tmp_path: Path, kube: Kube, api_client: client.ApiClient, namespace: str
) -> None:
    """A Job made from the rendered CronJob (as `kubectl create job --from=cronjob/…`): its
    curl finds the Service's ready endpoint (the node reads the EndpointSlices, as kube-proxy
    does) and the engine runs the workflow. On Kubernetes' own control plane the node was
    refused the EndpointSlices and the trigger pod stayed Running for good."""
    directory = copy_example(tmp_path)
    text = (directory / "workflow.yaml").read_text()
    (directory / "workflow.yaml").write_text(
        text.replace("triggers:\n", "triggers:\n  - type: cron\n    schedule: '0 9 * * *'\n", 1)
    )
    bundle = bundle_of(kube, directory)
    rec = Recorder()
    assert (await deploy_cycle(kube, bundle, rec, RestartStamps())).ok
    (cron,) = bundle.cronjobs
    template = cron["spec"]["jobTemplate"]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "poke", "labels": (template.get("metadata") or {}).get("labels")},
        "spec": template["spec"],
    }
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, job)

    done = await asyncio.to_thread(
        wait_for,
        batch.list_namespaced_job,
        lambda j: j.metadata.name == "poke" and bool(j.status.succeeded or j.status.failed),
        30,
        namespace=namespace,
    )
    assert done.status.succeeded == 1
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=poke").items
    printed = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert '"success":true' in printed.replace(" ", ""), printed
