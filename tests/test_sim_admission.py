"""The embedded cluster admits and schedules pods as Kubernetes does: PodSecurity,
ResourceQuota and ServiceAccount admission, and the scheduler's filters. Each test names
the source of the behaviour (see devloop/sim/admission.py and kubelet.unschedulable); the
messages are the API server's and the scheduler's own words, which pdwatch's failure
catalogue reads.

And pdwatch's own pods, the engine's and a cron trigger's, are admitted where Pod Security
"restricted" is enforced."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster
from tests.target import sim_only
from tests.test_sim_fidelity import eventually

pytestmark = sim_only("tests the embedded cluster itself")

EXAMPLES = Path(__file__).parent.parent / "examples"
NS = "default"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "x", **spec.pop("container", {})}
    return {"metadata": {"name": name}, "spec": {"containers": [container], **spec}}


def refusal(api_client: client.ApiClient, body: dict[str, Any], ns: str = NS) -> str:
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api_client).create_namespaced_pod(ns, body)
    assert info.value.status == 403
    return str(json.loads(info.value.body)["message"])


def label_namespace(api_client: client.ApiClient, level: str, ns: str = NS) -> None:
    client.CoreV1Api(api_client).patch_namespace(
        ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}}
    )


# --- PodSecurity (pod-security-admission: admission.go, policy/check_*.go) ------------------


def test_pod_security_restricted_lists_every_check_a_bare_pod_fails(
    api_client: client.ApiClient,
) -> None:
    label_namespace(api_client, "restricted")
    assert refusal(api_client, pod("bare")) == (
        'pods "bare" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "c" must set '
        "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities "
        '(container "c" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot '
        '!= true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")'
    )


def test_pod_security_baseline_refuses_privileged_but_not_a_bare_pod(
    api_client: client.ApiClient,
) -> None:
    label_namespace(api_client, "baseline")
    client.CoreV1Api(api_client).create_namespaced_pod(NS, pod("bare"))
    message = refusal(api_client, pod("root", container={"securityContext": {"privileged": True}}))
    assert message == (
        'pods "root" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "c" must not set securityContext.privileged=true)'
    )


def test_pod_security_unlabelled_namespace_is_privileged(api_client: client.ApiClient) -> None:
    client.CoreV1Api(api_client).create_namespaced_pod(
        NS, pod("root", container={"securityContext": {"privileged": True}})
    )


def rendered(tmp_path: Path, example: str) -> Bundle:
    directory = tmp_path / example
    shutil.copytree(EXAMPLES / example, directory)
    bundle = render(directory, RenderOptions(NS))
    assert isinstance(bundle, Bundle), bundle
    return bundle


def test_pdwatch_pods_meet_pod_security_restricted(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    """The engine's pod and a cron trigger's (the trigger had no securityContext: Jobs in a
    restricted namespace were refused and the schedule never ran)."""
    label_namespace(api_client, "restricted")
    bundle = rendered(tmp_path, "uptime-prober")
    templates = [bundle.deployment["spec"]["template"]] + [
        cron["spec"]["jobTemplate"]["spec"]["template"] for cron in bundle.cronjobs
    ]
    assert len(templates) == 2
    core = client.CoreV1Api(api_client)
    for i, template in enumerate(templates):
        core.create_namespaced_pod(NS, {"metadata": {"name": f"p{i}"}, "spec": template["spec"]})


# --- ResourceQuota (apiserver admission/plugin/resourcequota/controller.go checkRequest;
#     pkg/quota/v1/evaluator/core/pods.go; the quota controller's status) ----------------------


def test_resource_quota_refuses_what_exceeds_it_with_the_plugin_s_words(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1", "requests.memory": "1Gi"}}}
    )
    small = {"resources": {"requests": {"memory": "512Mi"}}}
    core.create_namespaced_pod(NS, pod("first", container=small))
    assert refusal(api_client, pod("second", container=small)) == (
        'pods "second" is forbidden: exceeded quota: q, requested: pods=1, '
        "used: pods=1, limited: pods=1"
    )
    status = eventually(lambda: core.read_namespaced_resource_quota("q", NS).status.used)
    assert status == {"pods": "1", "requests.memory": "512Mi"}


def test_resource_quota_on_memory_needs_every_pod_to_say_its_memory(
    api_client: client.ApiClient,
) -> None:
    client.CoreV1Api(api_client).create_namespaced_resource_quota(
        NS, {"metadata": {"name": "mem"}, "spec": {"hard": {"limits.memory": "1Gi"}}}
    )
    assert refusal(api_client, pod("unsized")) == (
        # pods.go Constraints (v1.37.2): per resource, the containers that miss it
        'pods "unsized" is forbidden: failed quota: mem: must specify limits.memory for: c'
    )


def test_pdwatch_pods_carry_what_a_quota_needs(
    tmp_path: Path, api_client: client.ApiClient
) -> None:
    hard = {
        "requests.cpu": "4",
        "requests.memory": "4Gi",
        "limits.cpu": "4",
        "limits.memory": "4Gi",
    }
    client.CoreV1Api(api_client).create_namespaced_resource_quota(
        NS, {"metadata": {"name": "all"}, "spec": {"hard": hard}}
    )
    bundle = rendered(tmp_path, "uptime-prober")
    templates = [bundle.deployment["spec"]["template"]] + [
        cron["spec"]["jobTemplate"]["spec"]["template"] for cron in bundle.cronjobs
    ]
    for i, template in enumerate(templates):
        client.CoreV1Api(api_client).create_namespaced_pod(
            NS, {"metadata": {"name": f"p{i}"}, "spec": template["spec"]}
        )


# --- ServiceAccount (plugin/pkg/admission/serviceaccount/admission.go; the
#     serviceaccounts controller) --------------------------------------------------------------


def test_a_pod_gets_the_default_service_account_which_must_exist(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_pod(NS, pod("p"))
    assert created.spec.service_account_name == "default"
    cluster.settings.service_account_delay = 60
    core.delete_namespaced_service_account("default", NS)
    assert refusal(api_client, pod("q")) == (
        'pods "q" is forbidden: error looking up service account default/default: '
        'serviceaccount "default" not found'
    )


def test_the_controller_gives_every_namespace_its_default_service_account(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": "team"}})
    eventually(lambda: core.list_namespaced_service_account("team").items)
    core.delete_namespaced_service_account("default", "team")
    eventually(lambda: core.list_namespaced_service_account("team").items)


# --- the scheduler (framework/types.go FitError; plugins NodeUnschedulable, TaintToleration,
#     NodeResourcesFit; schedule_one.go ErrNoNodesAvailable) -----------------------------------


def failed_scheduling(api_client: client.ApiClient, name: str) -> str:
    core = client.CoreV1Api(api_client)

    def found() -> str | None:
        for event in core.list_namespaced_event(NS).items:
            if event.reason == "FailedScheduling" and event.involved_object.name == name:
                assert event.source.component == "default-scheduler"
                return str(event.message)
        return None

    message: str = eventually(found)
    status = core.read_namespaced_pod(name, NS).status
    assert status.phase == "Pending" and status.conditions[0].reason == "Unschedulable"
    return message


def the_node(api_client: client.ApiClient) -> str:
    (node,) = client.CoreV1Api(api_client).list_node().items
    return str(node.metadata.name)


def test_an_untolerated_taint_keeps_the_pod_pending(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    core.patch_node(the_node(api_client), {"spec": {"taints": [taint]}})
    core.create_namespaced_pod(NS, pod("p"))
    assert failed_scheduling(api_client, "p") == (
        "0/1 nodes are available: 1 node(s) had untolerated taint(s). "
        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    )
    tolerant = pod("t", tolerations=[{"key": "dedicated", "operator": "Exists"}])
    core.create_namespaced_pod(NS, tolerant)
    eventually(lambda: core.read_namespaced_pod("t", NS).spec.node_name)


def test_requests_beyond_the_node_s_allocatable_are_insufficient(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    core.patch_node_status(
        the_node(api_client), {"status": {"allocatable": {"cpu": "1", "memory": "1Gi"}}}
    )
    big = {"resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}
    core.create_namespaced_pod(NS, pod("big", container=big))
    assert failed_scheduling(api_client, "big") == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: "
        "0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )


def test_no_node_at_all(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.delete_node(the_node(api_client))
    core.create_namespaced_pod(NS, pod("p"))
    assert failed_scheduling(api_client, "p") == "no nodes available to schedule pods"


# --- a registry that asks for credentials (containerd's words; the kubelet's keyring) -------


def test_a_private_registry_refuses_an_anonymous_pull_and_accepts_a_pull_secret(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    cluster.add_private_registry("ghcr.io")
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(NS, pod("anon", container={"image": "ghcr.io/acme/engine:2"}))

    def waiting() -> Any:
        statuses = core.read_namespaced_pod("anon", NS).status.container_statuses or []
        return statuses and statuses[0].state.waiting and statuses[0].state.waiting.message

    assert "pull access denied" in eventually(waiting)
    auth = json.dumps({"auths": {"ghcr.io": {"auth": "dTpw"}}})
    core.create_namespaced_secret(
        NS,
        {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(auth.encode()).decode()},
        },
    )
    core.create_namespaced_pod(
        NS,
        pod(
            "authed",
            container={"image": "ghcr.io/acme/engine:2"},
            imagePullSecrets=[{"name": "regcred"}],
        ),
    )

    def pulled() -> bool:
        return any(
            e.reason == "Pulled" and e.involved_object.name == "authed"
            for e in core.list_namespaced_event(NS).items
        )

    eventually(pulled)
