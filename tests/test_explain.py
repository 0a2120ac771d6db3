"""The failure catalogue (explain.CATALOGUE): each entry recognises the cluster's own
words and says what happened and what to do.

Two kinds of test: the embedded cluster made to fail in each way it can (the message is
then the cluster's, not the test's), and, for what it cannot produce (registries that
ask for credentials, quotas, Pod Security, scheduling), the messages as the kubelet,
containerd, the scheduler and the admission plugins word them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop import events
from devloop.explain import CATALOGUE, Explanation, Failure, Situation, explain, explaining
from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle
from devloop.kube.rollout import follow_rollout
from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster

EXAMPLES = Path(__file__).parent.parent / "examples"
NS = "default"
KIND = Situation(context="kind-dev", image="engine:dev", namespace=NS)


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
def kube(api_client: client.ApiClient) -> Kube:
    return Kube(api_client, NS)


def hello(tmp_path: Path, **options: Any) -> Bundle:
    target = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", target)
    result = render(target, RenderOptions(**options))
    assert isinstance(result, Bundle), result
    return result


async def fail_with(
    kube: Kube, bundle: Bundle, situation: Situation, timeout: float = 3
) -> events.Explained:
    rec = Recorder()
    result = await deploy_cycle(
        kube, bundle, explaining(rec, situation), RestartStamps(), rollout_timeout=timeout
    )
    assert not result.ok
    return rec.explained()


# --- made to happen in the embedded cluster -------------------------------------------


async def test_image_not_in_its_registry_on_kind(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.settings.unpullable.add("engine:dev")
    found = await fail_with(kube, hello(tmp_path, image="engine:dev"), KIND)
    assert found.what == "the image engine:dev is not in its registry"
    assert found.fix.endswith("kind load docker-image engine:dev --name dev")


async def test_a_registry_that_cannot_be_reached(tmp_path: Path, kube: Kube) -> None:
    image = "registry.invalid/team/engine:1"
    found = await fail_with(kube, hello(tmp_path, image=image), Situation("k3d-work", image, NS))
    assert found.what == "the cluster's node cannot reach the registry registry.invalid"
    assert found.fix.endswith(f"k3d image import {image} -c work")


async def test_a_node_that_throws_while_loading(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path)
    bundle.config_map["data"]["nodes__greet.ts"] = 'throw new Error("no API key");\n'
    found = await fail_with(kube, bundle, KIND)
    assert found.what == "the engine failed in nodes/greet.ts:1:7 while loading it"
    assert found.fix.startswith("fix nodes/greet.ts at line 1")


async def test_an_import_of_a_file_that_is_not_deployed(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path)
    bundle.config_map["data"]["nodes__greet.ts"] = 'import { x } from "./lib/util.ts";\n'
    found = await fail_with(kube, bundle, KIND)
    assert found.what == "a node imports nodes/lib/util.ts, which is not in the deployed workflow"


async def test_a_workflow_the_engine_refuses(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path)
    text = bundle.config_map["data"]["workflow.yaml"]
    bundle.config_map["data"]["workflow.yaml"] = text.replace("edges:", "old_edges:")
    found = await fail_with(kube, bundle, KIND)
    assert found.fix.startswith("add edges: [] to workflow.yaml")


async def test_killed_for_its_memory(tmp_path: Path, cluster: EmbeddedCluster, kube: Kube) -> None:
    cluster.set_image("engine:hungry", oom_killed=True)
    found = await fail_with(kube, hello(tmp_path, image="engine:hungry"), KIND)
    assert found.what.startswith("the engine was killed for using more memory than its limit")


async def test_readiness_never_answered(
    tmp_path: Path, cluster: EmbeddedCluster, kube: Kube
) -> None:
    cluster.set_image("engine:deaf", ready=False)
    found = await fail_with(kube, hello(tmp_path, image="engine:deaf"), KIND, timeout=1.5)
    assert found.what.startswith("the engine runs but does not answer its readiness check")


async def test_a_missing_runtime_class(tmp_path: Path, kube: Kube) -> None:
    found = await fail_with(kube, hello(tmp_path, runtime_class="kata"), KIND, timeout=1.5)
    assert found.what == 'the cluster has no RuntimeClass "kata" (stock kind and k0s have none)'
    assert found.fix.startswith('--runtime-class "" runs the pod without it')


async def test_the_code_configmap_missing(tmp_path: Path, kube: Kube) -> None:
    bundle = hello(tmp_path)
    deployment = await kube.apply(bundle.deployment)  # the ConfigMap was never written
    rec = Recorder()
    result = await follow_rollout(kube, deployment, explaining(rec, KIND), timeout=1.5)
    assert not result.ok
    found = rec.explained()
    assert found.what == "the pod mounts the ConfigMap hello-code, which is not in the namespace"


# --- as the cluster words what the embedded cluster does not produce --------------------

ENTRIES: list[tuple[str, Failure, Situation, str, str]] = [
    (
        "image-private",
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
    (
        "quota",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedCreate: Error creating: pods "
            '"wf-5d9c-x2" is forbidden: exceeded quota: team-quota, requested: '
            "limits.memory=256Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi",
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "the namespace's ResourceQuota team-quota refuses the pod (requested: "
        "limits.memory=256Mi, used: limits.memory=1Gi, limited: limits.memory=1Gi)",
        "kubectl describe resourcequota team-quota -n team",
    ),
    (
        "pod-security",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedCreate: Error creating: pods "
            '"wf-5d9c-x2" is forbidden: violates PodSecurity "restricted:latest": '
            'unrestricted capabilities (container "engine" must set '
            'securityContext.capabilities.drop=["ALL"])',
        ),
        Situation("kind-dev", "engine:dev", "team"),
        'the namespace\'s Pod Security level "restricted" refuses the pod: unrestricted '
        'capabilities (container "engine" must set securityContext.capabilities.drop=["ALL"])',
        "pod-security.kubernetes.io/enforce",
    ),
    (
        "service-account",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedCreate: Error creating: pods "
            '"wf-5d9c-x2" is forbidden: error looking up service account team/default: '
            'serviceaccount "default" not found',
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "the namespace's default ServiceAccount does not exist yet",
        "the controller creates it",
    ),
    (
        "taint",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedScheduling: 0/1 nodes are "
            "available: 1 node(s) had untolerated taint {node-role.kubernetes.io/"
            "control-plane: }. preemption: 0/1 nodes are available: 1 Preemption is not "
            "helpful for scheduling.",
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "every node carries a taint the pod does not tolerate "
        "({node-role.kubernetes.io/control-plane: })",
        "kubectl taint nodes --all node-role.kubernetes.io/control-plane-",
    ),
    (
        "insufficient",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedScheduling: 0/1 nodes are "
            "available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No "
            "preemption victims found for incoming pod.",
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "no node has enough memory free for the pod's request",
        "kubectl top nodes",
    ),
    (
        "no-nodes",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedScheduling: no nodes "
            "available to schedule pods",
        ),
        Situation("k0s", "engine:dev", "team"),
        "the cluster has no node that runs pods",
        "--enable-worker",
    ),
    (
        "mount-key-missing",
        Failure(
            "Timeout",
            "the new pod was not Ready after 120s; last: FailedMount: MountVolume.SetUp "
            'failed for volume "code" : configmap references non-existent config key: '
            "nodes__x.ts",
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "the pod mounts the key nodes__x.ts, which its ConfigMap or Secret does not have",
        "save any file",
    ),
    (
        "progress-deadline",
        Failure(
            "ProgressDeadlineExceeded",
            'ReplicaSet "wf-5d9c" has timed out progressing.',
        ),
        Situation("kind-dev", "engine:dev", "team"),
        "the Deployment made no progress within its progressDeadlineSeconds",
        "kubectl describe pod -n team",
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
        "image-missing",
        "registry-unreachable",
        "failed-in-node",
        "module-missing",
        "edges-missing",
        "oom",
        "not-ready",
        "runtime-class",
        "mount-missing",
    }
    assert {e.name for e in CATALOGUE} <= produced | {e[0] for e in ENTRIES}


def test_what_it_does_not_know_is_left_to_the_cluster_s_words() -> None:
    assert explain(Failure("Timeout", "the new pod was not Ready after 120s"), KIND) is None
    assert explain(Failure("Paused", "deployment x is paused"), KIND) is None


def test_no_explanation_quotes_the_logs() -> None:
    """The last log lines are shown once, above; an explanation names a file and line,
    never the log text (it may hold what a node printed of a secret)."""
    logs = (
        "error: Uncaught (in promise) Error: token sk_live_123 rejected",
        "    at file:///app/workflow/nodes/pay.ts:12:9",
    )
    found = explain(Failure("Error", "the engine exited with code 1", "p", logs), KIND)
    assert found is not None
    assert "sk_live_123" not in found.what + found.fix
    assert found.what == "the engine failed in nodes/pay.ts:12:9 while loading it"
