"""What the cluster runs is shown, whoever changed it: pdwatch watches its Deployment and
pods while idle. A Deployment deleted behind it (or a cluster recreated empty) is
deployed again; someone else's rollout or a deleted pod is followed and shown (the serving
pod and the logs switch), not fought; a restarted pdwatch with nothing to deploy shows the
pod that serves and tails it."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from kubernetes import client

from devloop import events
from devloop.kube.client import Kube
from devloop.sim import EmbeddedCluster
from tests import target
from tests.looprig import EXAMPLES, Rig, running_loop
from tests.target import sim_only

RESTART = {
    "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}}}
}


async def test_a_deployment_deleted_behind_pdwatch_is_deployed_again(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        mark = rig.mark()
        await asyncio.to_thread(
            client.AppsV1Api(api_client).delete_namespaced_deployment, "hello", namespace
        )
        # Seen as the Deployment's deletion, or first as its pod's (the cascade): either
        # way the cycle finds the Deployment gone and deploys it again.
        await rig.wait_for(
            events.Warning,
            lambda e: e.message == "in the cluster: deployment hello was deleted",
            mark,
        )
        done = await rig.cycle_done(mark)
        assert done.outcome == "ready"
        assert await rig.kube.get("Deployment", "hello") is not None


@sim_only("a new, empty cluster at the same address")
async def test_a_cluster_recreated_empty_is_noticed_while_idle(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        mark = rig.mark()
        port = cluster.port
        cluster.stop()
        with EmbeddedCluster(port=port):  # a new, empty cluster at the same address
            done = await rig.cycle_done(mark, timeout=30)
            assert done.outcome == "ready"
            assert await rig.kube.get("Deployment", "hello") is not None


async def test_someone_elses_rollout_restart_is_followed_and_shown(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        first_pod = rig.loop.current_pod
        mark = rig.mark()
        await asyncio.to_thread(
            client.AppsV1Api(api_client).patch_namespaced_deployment,
            "hello",
            namespace,
            RESTART,
            field_manager="kubectl-rollout",
        )
        started = await rig.wait_for(events.CycleStarted, since=mark)
        assert started.reason == "deployment hello was changed by kubectl-rollout"
        done = await rig.cycle_done(mark)
        assert done.outcome == "ready"
        assert rig.loop.current_pod != first_pod
        assert not rig.of(events.Applied, mark)  # shown, not fought
        ready = await rig.wait_for(events.PodReady, since=mark)
        await rig.wait_for(events.LogLine, lambda e: e.pod == ready.pod, mark)


async def test_a_deleted_serving_pod_is_replaced_in_view(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        first_pod = rig.loop.current_pod
        mark = rig.mark()
        await asyncio.to_thread(
            client.CoreV1Api(api_client).delete_namespaced_pod, first_pod, namespace
        )
        started = await rig.wait_for(events.CycleStarted, since=mark)
        assert started.reason == f"pod {first_pod} was deleted"
        await rig.wait_for(
            events.CycleFinished, lambda e: e.outcome in ("ready", "unchanged"), mark
        )
        await rig.wait_for(events.LogLine, lambda e: e.pod != first_pod, mark)
        assert rig.loop.current_pod not in ("", first_pod)


async def test_a_restarted_pdwatch_shows_the_serving_pod_and_its_logs(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        serving = rig.loop.current_pod
        directory = rig.directory
    # Someone writes the Deployment with kubectl (an annotation pdwatch does not set).
    await asyncio.to_thread(
        client.AppsV1Api(api_client).patch_namespaced_deployment,
        "hello",
        namespace,
        {"metadata": {"annotations": {"team": "a"}}},
        field_manager="kubectl-annotate",
    )
    again = Rig(directory, Kube(api_client, namespace))
    task = asyncio.create_task(again.loop.run())
    try:
        done = await again.cycle_done()
        assert done.outcome == "unchanged"
        (unchanged,) = again.of(events.Unchanged)
        assert unchanged.pod == serving
        await again.wait_for(events.LogLine, lambda e: e.pod == serving)
    finally:
        again.loop.quit()
        await asyncio.wait({task}, timeout=10)


async def test_a_deleted_namespace_is_created_again_with_create_namespace(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """The namespace is Terminating while its content goes (creating content in it is a
    403, creating it again a 409), then gone; pdwatch waits, creates it, deploys."""
    core = client.CoreV1Api(api_client)
    if target.REAL is None:  # the embedded cluster's own "default" stays; use another
        namespace = "team"
        await asyncio.to_thread(core.create_namespace, {"metadata": {"name": namespace}})
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    rig = Rig(directory, Kube(api_client, namespace), create_namespace=True)
    task = asyncio.create_task(rig.loop.run())
    try:
        assert (await rig.cycle_done()).outcome == "ready"
        mark = rig.mark()
        await asyncio.to_thread(core.delete_namespace, namespace)
        done = await rig.wait_for(
            events.CycleFinished, lambda e: e.outcome == "ready", mark, timeout=60
        )
        assert done.outcome == "ready"
        assert any("created it again" in e.message for e in rig.of(events.Warning, mark))
        assert await rig.kube.get("Deployment", "hello") is not None
    finally:
        rig.loop.quit()
        await asyncio.wait({task}, timeout=10)
