"""Every kubectl command pdwatch suggests is run here, exactly as pdwatch words it, against
the cluster in the situation it was suggested for, and does what the advice says
(issue 29 §9). The failure each explanation answers is the cluster's own (its event or
status message), so a suggestion that matches nothing, or a flag kubectl does not have,
fails here. Commands for tools this machine lacks (kind, k3d, minikube, docker, k0s) are
not run: their wording is checked against each tool's documented syntax in
tests/test_explain.py."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from devloop.explain import LIST_TAINTS, Failure, Situation, explain, explain_error
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster
from tests import target
from tests.kubewait import wait_for, wait_for_event
from tests.target import render_options

EXAMPLES = Path(__file__).parent.parent / "examples"
KUBECTL = Path(sys.executable).parent / "kubectl"
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl comes with the dev extras")


def kubectl(kubeconfig: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`command` as pdwatch printed it (a pipeline of kubectl commands too), run by a shell
    with the real kubectl against the test's cluster."""
    for part in command.split(" | "):
        assert shlex.split(part)[0] == "kubectl", command
    return subprocess.run(
        ["sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PATH": f"{KUBECTL.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        },
    )


def suggested(fix: str, command: str) -> str:
    """`command`, checked to be in pdwatch's advice word for word."""
    assert command in fix, f"{command!r} is not what pdwatch suggests: {fix!r}"
    return command


def deploy(api: client.ApiClient, namespace: str, tmp_path: Path, node: str = "") -> Bundle:
    """The hello example (its node replaced by `node` when given), created as pdwatch
    renders it."""
    directory = tmp_path / "hello"
    if not directory.exists():
        import shutil

        shutil.copytree(EXAMPLES / "hello", directory)
    if node:
        (directory / "nodes" / "greet.ts").write_text(node)
    bundle = render(directory, render_options(namespace))
    assert isinstance(bundle, Bundle), bundle
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespaced_config_map(namespace, bundle.code_snapshot)
    apps.create_namespaced_deployment(namespace, bundle.deployment)
    return bundle


@pytest.fixture
def kubeconfig(tmp_path: Path, cluster: EmbeddedCluster, namespace: str) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=namespace)


def situation(namespace: str) -> Situation:
    return Situation(target.context_name(), "", namespace)


def test_logs_previous_shows_the_crashed_engine_s_lines(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    deploy(
        api_client,
        namespace,
        tmp_path,
        'throw new Error("boom at load");\nexport default async function run() {}\n',
    )
    core = client.CoreV1Api(api_client)
    pod = wait_for(
        core.list_namespaced_pod,
        lambda p: any(
            s.last_state and s.last_state.terminated for s in p.status.container_statuses or []
        ),
        30,
        namespace=namespace,
    )
    failure = Failure("Error", "the engine exited with code 1", pod.metadata.name)
    found = explain(failure, situation(namespace))
    assert found is not None
    command = suggested(found.fix, f"kubectl logs {pod.metadata.name} --previous -n {namespace}")
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0, ran.stderr
    assert "Engine failed to start: Error: boom at load" in ran.stdout


async def test_describe_pods_of_the_new_replica_set_shows_its_pods(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    deploy(api_client, namespace, tmp_path)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    replica_set = wait_for(apps.list_namespaced_replica_set, lambda r: True, namespace=namespace)
    pod = wait_for(core.list_namespaced_pod, lambda p: True, namespace=namespace)
    # what pdwatch's rollout reports when the deadline passes: the new ReplicaSet's name
    failure = Failure("ProgressDeadlineExceeded", "", replica_set.metadata.name)
    found = explain(failure, situation(namespace))
    assert found is not None
    template_hash = replica_set.metadata.labels["pod-template-hash"]
    command = suggested(
        found.fix, f"kubectl describe pods -n {namespace} -l pod-template-hash={template_hash}"
    )
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0, ran.stderr
    assert re.search(rf"^Name:\s+{pod.metadata.name}$", ran.stdout, re.M), ran.stdout


def test_describe_resourcequota_shows_what_is_used(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_resource_quota(
        namespace,
        {"metadata": {"name": "tight"}, "spec": {"hard": {"pods": "0"}}},
    )
    wait_for(
        core.list_namespaced_resource_quota,
        lambda q: q.metadata.name == "tight" and q.status and q.status.hard,
        namespace=namespace,
    )
    deploy(api_client, namespace, tmp_path)
    event = wait_for_event(api_client, namespace, "FailedCreate", "hello-", 30)
    found = explain(Failure("FailedCreate", event.message), situation(namespace))
    assert found is not None, event.message
    command = suggested(found.fix, f"kubectl describe resourcequota tight -n {namespace}")
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0, ran.stderr
    assert "pods" in ran.stdout and "Used" in ran.stdout and "Hard" in ran.stdout, ran.stdout


def test_get_serviceaccount_default_finds_it(namespace: str, kubeconfig: Path) -> None:
    message = f'pods "x" is forbidden: error looking up service account {namespace}/default'
    found = explain(Failure("FailedCreate", message), situation(namespace))
    assert found is not None
    command = suggested(found.fix, f"kubectl get serviceaccount default -n {namespace}")
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0 and "default" in ran.stdout, ran.stderr


@pytest.mark.skipif(
    target.REAL is None,
    reason="kubectl create namespace sends protobuf, which the embedded cluster does not read",
)
def test_create_namespace_makes_the_missing_one(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    missing = f"{namespace}-x"[:63]
    core = client.CoreV1Api(api_client)
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_config_map(missing, {"metadata": {"name": "x"}})
    message = json.loads(refused.value.body)["message"]
    found = explain_error(message, situation(namespace))
    assert found is not None, message
    command = suggested(
        found.fix, f"kubectl --context {target.context_name()} create namespace {missing}"
    )
    try:
        ran = kubectl(kubeconfig, command)
        assert ran.returncode == 0, ran.stderr
        assert core.read_namespace(missing).metadata.name == missing
    finally:
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(missing)


@pytest.mark.skipif(
    target.REAL is None,
    reason="kubectl auth can-i sends a protobuf SelfSubjectAccessReview, which the embedded "
    "cluster does not read (and its RBAC refusals are only the tests' own)",
)
def test_auth_can_i_answers_for_the_refused_request(namespace: str, kubeconfig: Path) -> None:
    message = (
        'configmaps is forbidden: User "dev" cannot patch resource "configmaps" in API group '
        f'"" in the namespace "{namespace}"'
    )
    found = explain_error(message, situation(namespace))
    assert found is not None
    command = suggested(found.fix, f"kubectl auth can-i patch configmaps -n {namespace}")
    ran = kubectl(kubeconfig, command)
    # the tests' own user may: the command answers yes (exit 0); for "dev" it says no
    assert (ran.returncode, ran.stdout.strip()) == (0, "yes"), ran.stderr


async def test_rollout_resume_unpauses_the_deployment(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    from devloop.kube.progress import paused_failure

    deploy(api_client, namespace, tmp_path)
    apps = client.AppsV1Api(api_client)
    apps.patch_namespaced_deployment("hello", namespace, {"spec": {"paused": True}})
    command = suggested(
        paused_failure("hello", namespace).message,
        f"kubectl rollout resume deployment/hello -n {namespace}",
    )
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0, ran.stderr
    assert not apps.read_namespaced_deployment("hello", namespace).spec.paused


def test_describe_nodes_shows_what_is_allocated(namespace: str, kubeconfig: Path) -> None:
    message = "0/1 nodes are available: 1 Insufficient memory."
    found = explain(Failure("FailedScheduling", message), situation(namespace))
    assert found is not None
    command = suggested(found.fix, "kubectl describe nodes")
    ran = kubectl(kubeconfig, command)
    assert ran.returncode == 0, ran.stderr
    assert "Allocated resources:" in ran.stdout, ran.stdout


@target.machine_only("changes the cluster's node")
def test_get_nodes_shows_the_taint_the_scheduler_no_longer_names(
    namespace: str, kubeconfig: Path, the_node: tuple[client.CoreV1Api, str]
) -> None:
    """Since Kubernetes 1.35 FailedScheduling says only "had untolerated taint(s)"; the
    command pdwatch suggests shows which taint it is."""
    core, node_name = the_node
    taint = {"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}
    core.patch_node(node_name, {"spec": {"taints": [taint]}})
    message = "0/1 nodes are available: 1 node(s) had untolerated taint(s)."
    found = explain(Failure("FailedScheduling", message), situation(namespace))
    assert found is not None
    ran = kubectl(kubeconfig, suggested(found.fix, LIST_TAINTS))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[:2] == ["NODE", "TAINTS"], ran.stdout
    assert "example.com/dedicated" in ran.stdout and node_name in ran.stdout, ran.stdout


def test_cluster_info_answers_for_the_context(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    from devloop.kube.preflight import unreachable_advice

    context = target.context_name()
    # cluster-info lists kube-system's Services: outside the test's proxy, on the real one
    config = (
        cluster.write_kubeconfig(tmp_path / "kc", context=context)
        if target.REAL is None
        else target.REAL.kubeconfig
    )
    command = suggested(unreachable_advice(context), f"kubectl --context {context} cluster-info")
    ran = kubectl(config, command)
    assert ran.returncode == 0 and "is running at" in ran.stdout, ran.stderr


async def test_a_pull_secret_and_the_service_account_patch_as_suggested(
    api_client: client.ApiClient, namespace: str, kubeconfig: Path
) -> None:
    image = "registry.example.com/team/engine:1"
    found = explain(
        Failure("ErrImagePull", "failed to authorize: 401 Unauthorized"),
        Situation(target.context_name(), image, namespace),
    )
    assert found is not None
    create = (
        "kubectl create secret docker-registry regcred --docker-server=registry.example.com "
        f"--docker-username=… --docker-password=… -n {namespace} --dry-run=client -o yaml "
        "| kubectl apply -f -"
    )
    patch = (
        f"kubectl patch serviceaccount default -n {namespace} -p "
        """'{"imagePullSecrets":[{"name":"regcred"}]}'"""
    )
    suggested(found.fix, create)
    suggested(found.fix, patch)
    # the user fills in the two values pdwatch leaves as "…"
    filled = create.replace("=…", "=me", 1).replace("=…", "=secret", 1)
    for command in (filled, patch):
        ran = kubectl(kubeconfig, command)
        assert ran.returncode == 0, (command, ran.stderr)
    core = client.CoreV1Api(api_client)
    account = core.read_namespaced_service_account("default", namespace)
    assert [s.name for s in account.image_pull_secrets] == ["regcred"]
    assert core.read_namespaced_secret("regcred", namespace).type == (
        "kubernetes.io/dockerconfigjson"
    )
