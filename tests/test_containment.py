"""A failed rollout never reaches the pod that still serves (issue 24 §1): each pod template
mounts an immutable copy of its code, so a pod of the previous ReplicaSet, replaced for any
reason, runs the code it was created with."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

from kubernetes import client

from devloop import events
from devloop.kube import informers
from devloop.kube.client import Kube
from devloop.kube.deploy import prune_snapshots
from devloop.manifests import mounted_config_maps, snapshot_labels
from devloop.sim import EmbeddedCluster
from tests.helpers import crashing_node, node_code
from tests.kubewait import is_ready, wait_for
from tests.looprig import EXAMPLES, running_loop
from tests.processes import run_pdwatch

SNAPSHOTS = informers.selector_string(snapshot_labels("hello"))
GREET = Path("nodes") / "greet.ts"


async def test_a_replaced_pod_of_the_serving_rollout_runs_its_own_code(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """The campaign's repro: save a node that throws at load; after "the previous one keeps
    running", delete the serving pod (a drain, an eviction, kubectl delete pod). Its
    replacement comes from the serving ReplicaSet and must load that rollout's code."""
    core = client.CoreV1Api(api_client)
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        (rig.directory / GREET).write_text(node_code("served-v1"))
        mark = rig.mark()
        assert (await rig.cycle_done(mark)).outcome == "ready"
        serving = rig.loop.current_pod
        mark = rig.mark()
        (rig.directory / GREET).write_text(crashing_node("BROKEN-V2"))
        failed = await rig.cycle_done(mark)
        assert failed.outcome == "failed", rig.events[mark:]
        assert rig.loop.current_pod == serving  # the previous one keeps running
        await asyncio.to_thread(core.delete_namespaced_pod, serving, namespace)

        def replacement(pod: client.V1Pod) -> bool:
            owners = pod.metadata.owner_references or []
            return (
                pod.metadata.name != serving
                and serving.startswith(owners[0].name + "-")
                and is_ready(pod)
                and pod.metadata.deletion_timestamp is None
            )

        pod = await asyncio.to_thread(
            wait_for, core.list_namespaced_pod, replacement, 30, namespace=namespace
        )
        log = await asyncio.to_thread(core.read_namespaced_pod_log, pod.metadata.name, namespace)
        assert "served-v1" in log.splitlines(), log
        assert "BROKEN-V2" not in log
        # pdwatch follows the replacement, not the failed rollout once more.
        said = await rig.wait_for(
            events.Warning, lambda e: e.message.startswith(f"pod {serving} was replaced by"), mark
        )
        assert said.message.startswith(f"pod {serving} was replaced by {pod.metadata.name}")
        assert rig.loop.current_pod == pod.metadata.name
        assert len(rig.of(events.RolloutFailed, mark)) == 1  # the save's, not again


async def test_code_is_kept_while_a_replica_set_mounts_it(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """Each deploy's code copy stays while a ReplicaSet of the Deployment mounts it (so
    `kubectl rollout undo` finds it), and goes once none does."""
    apps = client.AppsV1Api(api_client)
    kube = Kube(api_client, namespace)
    async with running_loop(tmp_path, kube) as rig:
        for n in (2, 3):
            mark = rig.mark()
            (rig.directory / GREET).write_text(node_code(f"v{n}"))
            assert (await rig.cycle_done(mark)).outcome == "ready"
    listed = await kube.list("ConfigMap", label_selector=SNAPSHOTS)
    snapshots = {cm["metadata"]["name"] for cm in listed["items"]}
    replica_sets = (await kube.list("ReplicaSet", label_selector="app.kubernetes.io/name=hello"))[
        "items"
    ]
    mounted = set().union(*(mounted_config_maps(rs["spec"]["template"]) for rs in replica_sets))
    assert len(snapshots) == 3 and snapshots <= mounted
    for immutable in listed["items"]:
        assert immutable["immutable"] is True
    # Keep only the newest ReplicaSet: the other two copies are no longer mounted.
    await asyncio.to_thread(
        apps.patch_namespaced_deployment,
        "hello",
        namespace,
        {"spec": {"revisionHistoryLimit": 0}},
    )

    shared = informers.of(kube)
    ours = {"app.kubernetes.io/name": "hello"}

    async def two_gone() -> list[str]:
        """Pruned once the session's ReplicaSet watch has seen the two go (the prune
        decides on what it saw)."""
        changes = await shared.informer("ReplicaSet").subscribe(
            lambda rs: informers.carries(rs, ours)
        )
        try:
            async for _ in changes:
                if len(await shared.items("ReplicaSet", ours)) == 1:
                    return await prune_snapshots(kube, "hello")
        finally:
            changes.close()
        raise AssertionError("a subscription never ends on its own")

    deleted = await asyncio.wait_for(two_gone(), 30)
    assert len(deleted) == 2
    left = await kube.list("ConfigMap", label_selector=SNAPSHOTS)
    assert len(left["items"]) == 1


def test_a_same_named_object_of_someone_else_is_never_taken_over(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """The campaign's repro (§2): a Helm-style Deployment and Service `important-api` and a
    workflow of that name. --once refuses, naming the owner, and changes nothing; --down
    deletes nothing of them."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    helm = {"app.kubernetes.io/name": "important-api", "app.kubernetes.io/managed-by": "Helm"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": "important-api", "labels": helm},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "important-api"}},
                "template": {
                    "metadata": {"labels": {"app": "important-api"}},
                    "spec": {"containers": [{"name": "api", "image": "pipedreamer-engine:latest"}]},
                },
            },
        },
        field_manager="helm",
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "important-api", "labels": helm},
            "spec": {"selector": {"app": "important-api"}, "ports": [{"port": 80}]},
        },
        field_manager="helm",
    )
    directory = tmp_path / "important-api"
    shutil.copytree(EXAMPLES / "hello", directory)
    workflow = directory / "workflow.yaml"
    workflow.write_text(workflow.read_text().replace("name: hello", "name: important-api", 1))
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    once = run_pdwatch(str(directory), "--once", "--kubeconfig", str(kubeconfig))
    assert once.returncode != 0, once.stdout
    said = once.stdout.replace("\n", " ")
    assert "not pdwatch's: Deployment important-api" in said, once.stdout
    assert "app.kubernetes.io/managed-by=Helm" in said and "written by helm" in said
    assert "Traceback" not in once.stdout + once.stderr
    down = run_pdwatch(str(directory), "--down", "--kubeconfig", str(kubeconfig))
    assert down.returncode == 0, down.stdout + down.stderr
    deployment = apps.read_namespaced_deployment("important-api", namespace)
    assert deployment.spec.replicas == 2
    assert [c.name for c in deployment.spec.template.spec.containers] == ["api"]
    assert deployment.metadata.labels == helm
    assert core.read_namespaced_service("important-api", namespace).metadata.labels == helm
    names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
    assert not any(n.startswith("important-api-code") for n in names)  # nothing was written


async def test_two_directories_deploying_one_workflow_name_are_told_apart(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """A session runs from one folder; a second folder with the same `name:` deploys into
    the same namespace. The second says whose deploy it replaces; the session says that
    the other folder's files run now, not its own (issue 24 §2)."""
    kube = Kube(api_client, namespace)
    async with running_loop(tmp_path / "first", kube) as rig:
        await rig.cycle_done()
        second = tmp_path / "second" / "hello"
        shutil.copytree(EXAMPLES / "hello", second)
        (second / GREET).write_text(node_code("from-the-second-folder"))
        mark = rig.mark()
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        once = await asyncio.to_thread(
            run_pdwatch, str(second), "--once", "--kubeconfig", str(kubeconfig)
        )
        assert once.returncode == 0, once.stdout + once.stderr
        said = " ".join(once.stdout.split())
        first = f"{socket.gethostname()}:{rig.directory.resolve()}"
        assert f"was deployed from {first}, not from this directory" in said, said
        warning = await rig.wait_for(
            events.Warning, lambda e: "was deployed from" in e.message, since=mark
        )
        assert f":{second.resolve()}: that directory's files run now, not these" in warning.message
