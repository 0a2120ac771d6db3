"""The failure catalogue (explain.CATALOGUE): each entry recognises the cluster's own
words and says what happened and what to do.

Two kinds of test: the embedded cluster made to fail in each way it can (the message is
then the cluster's, not the test's: registries, quotas, Pod Security, scheduling, mounts,
the engine), and, for the few it does not produce (an invalid image name, which pdwatch
refuses before deploying; an exit without the engine's words; other clusters' naming),
the messages as the kubelet, containerd and the controllers word them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop import events
from devloop.explain import (
    CATALOGUE,
    Explanation,
    Failure,
    Situation,
    explain,
    explain_error,
    explaining,
)
from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle
from devloop.kube.errors import KubeError
from devloop.kube.rollout import follow_rollout
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster
from tests.helpers import STUCK_AT_LOAD
from tests.processes import run_pdwatch
from tests.target import (
    limited_user,
    machine_only,
    patience,
    render_options,
    sim_only,
)

EXAMPLES = Path(__file__).parent.parent / "examples"


def kind_in(namespace: str) -> Situation:
    return Situation(context="kind-dev", image="engine:dev", namespace=namespace)


class Recorder:
    def __init__(self) -> None:
        self.events: list[events.Event] = []

    def __call__(self, event: events.Event) -> None:
        self.events.append(event)

    def explained(self) -> events.Explained:
        found = [e for e in self.events if isinstance(e, events.Explained)]
        failures = [e for e in self.events if isinstance(e, events.RolloutFailed)]
        assert len(found) == 1, failures
        index = self.events.index(found[0])
        assert isinstance(self.events[index - 1], events.RolloutFailed)  # right after it
        return found[0]


@pytest.fixture
def kube(api_client: client.ApiClient, namespace: str) -> Kube:
    return Kube(api_client, namespace)


def hello(tmp_path: Path, kube: Kube, **options: Any) -> Bundle:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    result = render(directory, replace(render_options(kube.namespace), **options))
    assert isinstance(result, Bundle), result
    return result


async def fail_with(
    kube: Kube, bundle: Bundle, situation: Situation, timeout: float = 3
) -> events.Explained:
    rec = Recorder()
    result = await deploy_cycle(
        kube, bundle, explaining(rec, situation), RestartStamps(), rollout_timeout=patience(timeout)
    )
    assert not result.ok
    return rec.explained()


# --- made to happen in the embedded cluster -------------------------------------------


async def test_image_not_in_its_registry_on_kind(tmp_path: Path, kube: Kube) -> None:
    found = await fail_with(
        kube, hello(tmp_path, kube, image="engine:dev"), kind_in(kube.namespace)
    )
    assert found.what.startswith("the image engine:dev is not on Docker Hub, or is private")
    assert "built on this machine? load it: kind load docker-image engine:dev --name dev" in (
        found.fix
    )


async def test_a_typo_in_the_engine_image_fails_to_pull_with_a_did_you_mean(
    tmp_path: Path, kube: Kube
) -> None:
    """`pipedreamer-engne:latest` deployed Ready on the embedded cluster (issue 29 §10): it
    fails as on a kind node, where Docker Hub has no such repository, and the fix names the
    image meant."""
    image = "pipedreamer-engne:latest"
    situation = Situation(context="kind-dev", image=image, namespace=kube.namespace)
    found = await fail_with(kube, hello(tmp_path, kube, image=image), situation)
    assert found.what.startswith(f"the image {image} is not on Docker Hub"), found.what
    assert found.fix.startswith("did you mean pipedreamer-engine:latest?"), found.fix


async def test_a_registry_that_cannot_be_reached(tmp_path: Path, kube: Kube) -> None:
    image = "registry.invalid/team/engine:1"
    found = await fail_with(
        kube, hello(tmp_path, kube, image=image), Situation("k3d-work", image, kube.namespace)
    )
    assert found.what == "the cluster's node cannot reach the registry registry.invalid"
    assert found.fix.endswith(f"k3d image import {image} -c work")


async def test_a_node_that_throws_while_loading(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = 'throw new Error("no API key");\n'
    found = await fail_with(kube, bundle, kind_in(kube.namespace))
    assert found.what == "the engine failed in nodes/greet.ts:1:7 while loading it"
    assert found.fix.startswith("fix nodes/greet.ts at line 1")


async def test_a_node_without_a_default_export(tmp_path: Path, kube: Kube) -> None:
    """pdwatch refuses such a file before deploy; deployed by other means, the engine's own
    refusal is explained from its output."""
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = "export const run = () => 1;\n"
    found = await fail_with(kube, bundle, kind_in(kube.namespace))
    assert found.what == (
        "the engine refused nodes/greet.ts: it has no default export, so there is nothing to run"
    )
    assert found.fix.startswith("add `export default async function run(ctx, input)")


async def test_an_import_of_a_file_that_is_not_deployed(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = 'import { x } from "./lib/util.ts";\n'
    found = await fail_with(kube, bundle, kind_in(kube.namespace))
    assert found.what == "a node imports nodes/lib/util.ts, which is not in the deployed workflow"


async def test_a_workflow_the_engine_refuses(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    text = bundle.code_snapshot["data"]["workflow.yaml"]
    bundle.code_snapshot["data"]["workflow.yaml"] = text.replace("edges:", "old_edges:")
    found = await fail_with(kube, bundle, kind_in(kube.namespace))
    assert found.fix.startswith("add edges: [] to workflow.yaml")


@machine_only("an engine image killed for its memory (set_image)")
async def test_killed_for_its_memory(tmp_path: Path, cluster: EmbeddedCluster, kube: Kube) -> None:
    cluster.set_image("engine:hungry", oom_killed=True)
    found = await fail_with(
        kube, hello(tmp_path, kube, image="engine:hungry"), kind_in(kube.namespace)
    )
    assert found.what.startswith("the engine was killed for using more memory than its limit")


async def test_readiness_never_answered(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = STUCK_AT_LOAD
    # Without its liveness probe, which would stop it (after 35 s on a real cluster, 1.25 s
    # on a time-scaled embedded one): this is about the readiness check alone.
    del bundle.deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    found = await fail_with(kube, bundle, kind_in(kube.namespace), timeout=1.5)
    assert found.what.startswith("the engine runs but does not answer its readiness check")


async def test_an_engine_stuck_loading_until_its_liveness_probe_restarts_it(
    tmp_path: Path, kube: Kube
) -> None:
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = STUCK_AT_LOAD
    found = await fail_with(kube, bundle, kind_in(kube.namespace), timeout=20)
    assert found.what.startswith("the engine did not answer its liveness check")
    assert "top-level await" in found.fix


async def test_a_missing_runtime_class(tmp_path: Path, kube: Kube) -> None:
    found = await fail_with(
        kube, hello(tmp_path, kube, runtime_class="kata"), kind_in(kube.namespace), timeout=1.5
    )
    assert found.what == 'the cluster has no RuntimeClass "kata" (stock kind and k0s have none)'
    assert found.fix.startswith('--runtime-class "" runs the pod without it')


async def test_the_code_configmap_missing(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    deployment = await kube.apply(bundle.deployment)  # the ConfigMap was never written
    rec = Recorder()
    result = await follow_rollout(
        kube, deployment, explaining(rec, kind_in(kube.namespace)), timeout=patience(1.5)
    )
    assert not result.ok
    found = rec.explained()
    name = bundle.code_snapshot["metadata"]["name"]
    assert found.what == f"the pod mounts the ConfigMap {name}, which is not in the namespace"


@machine_only("a registry that asks for credentials (settings)")
async def test_a_registry_that_asks_for_credentials(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, kube: Kube
) -> None:
    cluster.add_private_registry("ghcr.io")
    image = "ghcr.io/acme/engine:2"
    found = await fail_with(
        kube, hello(tmp_path, kube, image=image), Situation("kind-dev", image, kube.namespace)
    )
    assert found.what.startswith(f"the registry ghcr.io refused the pull of {image}")
    assert "kubectl create secret docker-registry regcred --docker-server=ghcr.io" in found.fix
    # What the fix says to do makes the next deploy work (the ServiceAccount admission
    # gives its imagePullSecrets to each new pod).
    core = client.CoreV1Api(api_client)
    auths = json.dumps({"auths": {"ghcr.io": {"auth": "dTpw"}}}).encode()
    core.create_namespaced_secret(
        kube.namespace,
        {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(auths).decode()},
        },
    )
    core.patch_namespaced_service_account(
        "default", kube.namespace, {"imagePullSecrets": [{"name": "regcred"}]}
    )
    result = await deploy_cycle(
        kube,
        hello(tmp_path / "again", kube, image=image),
        Recorder(),
        RestartStamps(),
        force_restart=True,
        rollout_timeout=patience(10),
    )
    assert result.ok


async def test_a_resource_quota_that_refuses_the_pod(
    tmp_path: Path, api_client: client.ApiClient, kube: Kube
) -> None:
    client.CoreV1Api(api_client).create_namespaced_resource_quota(
        kube.namespace,
        {"metadata": {"name": "team-quota"}, "spec": {"hard": {"limits.memory": "128Mi"}}},
    )
    found = await fail_with(kube, hello(tmp_path, kube), kind_in(kube.namespace), timeout=1.5)
    assert found.what == (
        "the namespace's ResourceQuota team-quota refuses the pod (requested: "
        "limits.memory=256Mi, used: limits.memory=0, limited: limits.memory=128Mi)"
    )
    assert f"kubectl describe resourcequota team-quota -n {kube.namespace}" in found.fix


async def test_pod_security_that_refuses_the_pod(
    tmp_path: Path, api_client: client.ApiClient, kube: Kube
) -> None:
    """pdwatch's own pods meet "restricted" (tests/test_sim_fidelity.py); a pod made to
    keep its capabilities does not."""
    client.CoreV1Api(api_client).patch_namespace(
        kube.namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    bundle = hello(tmp_path, kube)
    container = bundle.deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {**container["securityContext"], "capabilities": {}}
    found = await fail_with(kube, bundle, kind_in(kube.namespace), timeout=1.5)
    assert found.what == (
        'the namespace\'s Pod Security level "restricted" refuses the pod: unrestricted '
        'capabilities (container "engine" must set securityContext.capabilities.drop=["ALL"])'
    )


@sim_only("a slow ServiceAccount controller (settings)")
async def test_a_namespace_without_its_service_account_yet(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, kube: Kube
) -> None:
    cluster.settings.service_account_delay = 60  # the controller is slow to recreate it
    client.CoreV1Api(api_client).delete_namespaced_service_account("default", kube.namespace)
    found = await fail_with(kube, hello(tmp_path, kube), kind_in(kube.namespace), timeout=1.5)
    assert found.what.startswith("the namespace's default ServiceAccount does not exist yet")
    assert found.fix.startswith("check kubectl get serviceaccount default -n default")


@machine_only("changes the cluster's node")
async def test_a_node_tainted_against_the_pod(
    tmp_path: Path, the_node: tuple[client.CoreV1Api, str], kube: Kube
) -> None:
    core, node_name = the_node
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    core.patch_node(node_name, {"spec": {"taints": [taint]}})
    found = await fail_with(kube, hello(tmp_path, kube), kind_in(kube.namespace), timeout=1.5)
    # as Kubernetes v1.37 words it: the taint is not named
    assert found.what == "every node carries a taint the pod does not tolerate"
    assert "kubectl taint nodes --all KEY-" in found.fix


@machine_only("changes the cluster's node")
async def test_a_node_without_the_memory_the_pod_requests(
    tmp_path: Path, the_node: tuple[client.CoreV1Api, str], kube: Kube
) -> None:
    core, node_name = the_node
    core.patch_node_status(node_name, {"status": {"allocatable": {"memory": "32Mi"}}})
    found = await fail_with(kube, hello(tmp_path, kube), kind_in(kube.namespace), timeout=1.5)
    assert found.what.startswith("no node has enough memory free for the pod's request")


@sim_only("deletes the cluster's node")
async def test_a_cluster_without_nodes(
    tmp_path: Path, api_client: client.ApiClient, kube: Kube
) -> None:
    core = client.CoreV1Api(api_client)
    (node,) = core.list_node().items
    core.delete_node(node.metadata.name)
    found = await fail_with(
        kube, hello(tmp_path, kube), Situation("k0s", "engine:dev", kube.namespace), 1.5
    )
    assert found.what.startswith("the cluster has no node that runs pods")
    assert "--enable-worker" in found.fix


async def test_a_configmap_without_a_key_the_pod_mounts(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path, kube)
    config_map = {**bundle.code_snapshot, "data": dict(bundle.code_snapshot["data"])}
    del config_map["data"]["nodes__greet.ts"]  # the volume's items still name it
    await kube.apply(config_map)
    deployment = await kube.apply(bundle.deployment)
    rec = Recorder()
    result = await follow_rollout(
        kube, deployment, explaining(rec, kind_in(kube.namespace)), timeout=patience(1.5)
    )
    assert not result.ok
    found = rec.explained()
    assert found.what.startswith("the pod mounts the key nodes__greet.ts")


async def test_no_progress_within_the_deadline(
    tmp_path: Path, kube: Kube, cluster: EmbeddedCluster
) -> None:
    bundle = hello(tmp_path, kube)
    bundle.code_snapshot["data"]["nodes__greet.ts"] = STUCK_AT_LOAD
    bundle.deployment["spec"]["progressDeadlineSeconds"] = 1
    found = await fail_with(kube, bundle, kind_in(kube.namespace), timeout=60)
    assert found.what.startswith(
        "the Deployment made no progress within its progressDeadlineSeconds"
    )
    # the command it suggests is run as written and shows the stuck pod's events
    command = found.fix.split(": ", 1)[1]
    assert command.startswith("kubectl describe pods -n ") and "managed-by" not in command
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    kubectl = str(Path(sys.executable).parent / "kubectl")
    shown = await asyncio.to_thread(
        subprocess.run,
        [kubectl, "--kubeconfig", str(kubeconfig), *command.split()[1:]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "Name:" in shown.stdout and "hello-" in shown.stdout and "Events:" in shown.stdout


async def test_an_image_name_the_runtime_cannot_parse(tmp_path: Path, kube: Kube) -> None:
    """pdwatch refuses such a name before deploying (image.py); a Deployment that has one
    anyway (kubectl set image) is what the kubelet then refuses."""
    bundle = hello(tmp_path, kube)
    bundle.deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "Engine:"
    found = await fail_with(kube, bundle, Situation("kind-dev", "Engine:", kube.namespace))
    assert found.what.startswith("the image name 'Engine:' is not a valid reference")


@machine_only("an image that exits at once (set_image)")
async def test_an_image_that_is_not_the_engine_exits(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.set_image("engine:wrong", exit_code=2)
    found = await fail_with(
        kube, hello(tmp_path, kube, image="engine:wrong"), kind_in(kube.namespace)
    )
    assert found.what.startswith("the engine exited with code 2 at start")


@machine_only("a registry that answers 500 (settings)")
async def test_a_registry_that_fails_in_another_way(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    """The fallback entry: a pull error the catalogue has no words for (a 500)."""
    cluster.add_failing_registry("registry.acme.io")
    image = "registry.acme.io/team/engine:dev"
    found = await fail_with(
        kube, hello(tmp_path, kube, image=image), Situation("prod", image, kube.namespace)
    )
    assert found.what.startswith(f"the image {image} could not be pulled")
    assert f"docker push {image}" in found.fix


# --- as the cluster words what the embedded cluster does not produce --------------------

ENTRIES: list[tuple[str, Failure, Situation, str, str]] = [
    (
        "image-private",  # a registry's 401 (ghcr.io); the embedded one answers as Docker Hub does
        Failure(
            "ErrImagePull",
            'rpc error: code = Unknown desc = failed to pull and unpack image "ghcr.io/acme/'
            'engine:2": failed to resolve reference "ghcr.io/acme/engine:2": failed to '
            "authorize: failed to fetch anonymous token: unexpected status from GET request "
            "to https://ghcr.io/token?scope=repository%3Aacme%2Fengine%3Apull: 401 "
            "Unauthorized",
        ),
        Situation("kind-dev", "ghcr.io/acme/engine:2", "team"),
        "the registry ghcr.io refused the pull of ghcr.io/acme/engine:2",
        "kubectl create secret docker-registry regcred --docker-server=ghcr.io",
    ),
    (
        "image-missing",
        Failure(
            "ErrImagePull",
            'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/'
            'library/engine:dev": failed to resolve reference "docker.io/library/engine:dev":'
            " docker.io/library/engine:dev: not found",
        ),
        Situation("minikube", "engine:dev", "default"),
        "the image engine:dev is not in its registry",
        "minikube image load engine:dev",
    ),
    (
        "image-missing",
        Failure("ImagePullBackOff", 'Back-off pulling image "engine:dev": not found'),
        Situation("k0s", "engine:dev", "default"),
        "the image engine:dev is not in its registry",
        "k0s ctr images import engine.tar",
    ),
    (
        "image-other",
        Failure("ImagePullBackOff", 'Back-off pulling image "engine:dev"'),
        Situation("prod-east", "registry.acme.io/engine:dev", "default"),
        "the image registry.acme.io/engine:dev could not be pulled",
        "docker push registry.acme.io/engine:dev",
    ),
    (
        "image-invalid",  # pdwatch refuses such a name before deploying (image.py)
        Failure("InvalidImageName", 'Failed to apply default image tag "Engine:"'),
        Situation("kind-dev", "Engine:", "team"),
        "the image name 'Engine:' is not a valid reference",
        "base-image.txt",
    ),
    (
        "exited",
        Failure("Error", "the engine exited with code 2", "wf-1"),
        Situation("kind-dev", "engine:dev", "team"),
        "the engine exited with code 2 at start",
        "kubectl logs wf-1 --previous -n team",
    ),
]


@pytest.mark.parametrize(
    ("entry", "failure", "situation", "what", "fix_part"),
    ENTRIES,
    ids=[f"{e[0]}-{i}" for i, e in enumerate(ENTRIES)],
)
def test_words_of_the_cluster(
    entry: str, failure: Failure, situation: Situation, what: str, fix_part: str
) -> None:
    found = explain(failure, situation)
    assert isinstance(found, Explanation), entry
    assert found.what.startswith(what)
    assert fix_part in found.fix


def test_every_entry_is_tested() -> None:
    """Each entry has a case above or a test that makes the embedded cluster produce it."""
    produced = {
        "not-alive",
        "image-private",
        "image-missing",
        "registry-unreachable",
        "failed-in-node",
        "module-missing",
        "edges-missing",
        "no-default-export",
        "oom",
        "not-ready",
        "runtime-class",
        "mount-missing",
        "mount-key-missing",
        "quota",
        "pod-security",
        "service-account",
        "taint",
        "insufficient",
        "no-nodes",
        "progress-deadline",
        "image-invalid",
        "exited",
        "image-other",
    }
    assert {e.name for e in CATALOGUE} <= produced | {e[0] for e in ENTRIES}


def test_what_it_does_not_know_is_left_to_the_cluster_s_words() -> None:
    assert (
        explain(Failure("Timeout", "the new pod was not Ready after 120s"), kind_in("default"))
        is None
    )
    assert explain(Failure("Paused", "deployment x is paused"), kind_in("default")) is None


def test_no_explanation_quotes_the_logs() -> None:
    """The last log lines are shown once, above; an explanation names a file and line,
    never the log text (it may hold what a node printed of a secret)."""
    logs = (
        "Engine failed to start: Error: token sk_live_123 rejected",
        "    at file:///app/workflow/nodes/pay.ts:12:9",
    )
    found = explain(
        Failure("Error", "the engine exited with code 1", "p", logs), kind_in("default")
    )
    assert found is not None
    assert "sk_live_123" not in found.what + found.fix
    assert found.what == "the engine failed in nodes/pay.ts:12:9 while loading it"


# --- requests the API server refuses (outside a rollout) ----------------------------------


async def test_rbac_that_does_not_allow_a_verb(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.forbid("create", "configmaps")
    with pytest.raises(KubeError) as info:
        await kube.apply(hello(tmp_path, kube).config_map)
    found = explain_error(str(info.value), kind_in(kube.namespace))
    assert found is not None, str(info.value)
    assert found.what == (
        f"the cluster's RBAC does not let {limited_user(kube.namespace)} create configmaps "
        f"in namespace {kube.namespace}"
    )
    assert found.fix.startswith("ask for a Role that grants it (kubectl auth can-i create ")
    assert f"configmaps -n {kube.namespace} checks it)" in found.fix


async def test_a_namespace_being_deleted(api_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api_client)
    going = f"{namespace}-going"  # the test's own (tests/faultproxy.py)
    core.create_namespace({"metadata": {"name": going}})
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    core.create_namespaced_config_map(going, held)
    core.delete_namespace(going)  # stays Terminating while `held` is there
    try:
        with pytest.raises(KubeError) as info:
            await Kube(api_client, going).apply(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
            )
    finally:  # let the namespace go
        core.patch_namespaced_config_map("held", going, {"metadata": {"finalizers": None}})
    found = explain_error(str(info.value), kind_in(going))
    assert found is not None and found.what == f"the namespace {going} is being deleted"


async def test_a_namespace_that_does_not_exist(
    api_client: client.ApiClient, namespace: str
) -> None:
    with pytest.raises(KubeError) as info:
        await Kube(api_client, f"{namespace}-nope").apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
        )
    found = explain_error(str(info.value), kind_in(f"{namespace}-nope"))
    assert found is not None and found.fix.startswith("pass --create-namespace")


def test_once_explains_a_refused_request_before_exiting_4(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str
) -> None:
    """Preflight asks for patch; creating through apply also needs create (the API
    server's apply handler checks it), so this gets past it."""
    cluster.forbid("create", "services")
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = run_pdwatch(directory, "--once", "--kubeconfig", kubeconfig)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    user = limited_user(namespace)
    assert f"what happened: the cluster's RBAC does not let {user} create services" in proc.stdout
    assert "what to do: ask for a Role" in proc.stdout


def test_a_long_user_name_is_kept_whole_so_the_refusal_is_still_explained() -> None:
    """A cluster's long quoted values are shortened in messages, but not who was refused:
    a ServiceAccount's full name is often over 60 characters (the real API server's RBAC
    refusal of the tests' limited ServiceAccount went unexplained before)."""
    from devloop.kube.errors import shorten

    user = "system:serviceaccount:" + "n" * 50 + ":pdwatch-limited"
    message = shorten(
        f'configmaps "x" is forbidden: User "{user}" cannot create resource "configmaps" '
        'in API group "" in the namespace "ns"'
    )
    assert f'User "{user}"' in message
    found = explain_error(message, kind_in("ns"))
    assert found is not None and found.what.startswith(f"the cluster's RBAC does not let {user}")
