"""The embedded API server over real HTTP with the official client: discovery, verbs,
Status errors, validation, watch semantics, server-side apply and the patch types.

Expected texts follow the real API server (k8s.io/apimachinery api/errors and
util/validation; SSA conflict wording from kubernetes/kubernetes#80916 and #107417)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from devloop.sim import EmbeddedCluster
from tests.target import sim_only

pytestmark = sim_only("tests the embedded cluster itself")

APPLY = "application/apply-patch+yaml"


def status_of(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


def raw(
    cluster: EmbeddedCluster,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    http = urllib3.PoolManager()
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
    response = http.request(
        method, cluster.url + path, body=data, headers={"Content-Type": content_type}
    )
    text = response.data.decode()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def config_map(name: str, data: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, **meta},
        "data": data or {"k": "v"},
    }


# --- discovery ---------------------------------------------------------------------------


def test_discovery(cluster: EmbeddedCluster) -> None:
    assert raw(cluster, "GET", "/version")[1]["major"] == "1"
    assert raw(cluster, "GET", "/api")[1]["versions"] == ["v1"]
    groups = {g["name"] for g in raw(cluster, "GET", "/apis")[1]["groups"]}
    assert {"apps", "batch", "node.k8s.io", "authorization.k8s.io"} <= groups
    core = {r["name"] for r in raw(cluster, "GET", "/api/v1")[1]["resources"]}
    assert {"namespaces", "configmaps", "secrets", "services", "pods", "pods/log", "events"} <= core
    apps = {r["name"] for r in raw(cluster, "GET", "/apis/apps/v1")[1]["resources"]}
    assert {"deployments", "replicasets", "deployments/status"} <= apps


def test_starts_with_namespaces_runtimeclass_and_a_node(api_client: client.ApiClient) -> None:
    names = {n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items}
    assert {"default", "kube-system"} <= names
    rcs = client.NodeV1Api(api_client).list_runtime_class().items
    assert [rc.metadata.name for rc in rcs] == ["gvisor"]
    assert client.CoreV1Api(api_client).list_node().items[0].metadata.name == "pdwatch-embedded"


# --- verbs and errors ----------------------------------------------------------------------


def test_create_get_list_with_label_selector_delete(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_config_map("default", config_map("a", labels={"app": "x"}))
    core.create_namespaced_config_map("default", config_map("b", labels={"app": "y"}))
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert core.read_namespaced_config_map("a", "default").data == {"k": "v"}
    for selector, expected in [
        ("app=x", ["a"]),
        ("app!=x", ["b"]),
        ("app in (x,y)", ["a", "b"]),
        ("app notin (x)", ["b"]),
        ("app", ["a", "b"]),
        ("!app", []),
    ]:
        items = core.list_namespaced_config_map("default", label_selector=selector).items
        assert [i.metadata.name for i in items] == expected, selector
    core.delete_namespaced_config_map("a", "default")
    with pytest.raises(ApiException) as info:
        core.read_namespaced_config_map("a", "default")
    assert info.value.status == 404
    assert status_of(info.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "a" not found',
        "reason": "NotFound",
        "details": {"name": "a", "kind": "configmaps"},
        "code": 404,
    }


def test_not_found_names_the_group(api_client: client.ApiClient) -> None:
    with pytest.raises(ApiException) as info:
        client.AppsV1Api(api_client).read_namespaced_deployment("nope", "default")
    assert status_of(info.value)["message"] == 'deployments.apps "nope" not found'


def test_already_exists(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", config_map("a"))
    with pytest.raises(ApiException) as info:
        core.create_namespaced_config_map("default", config_map("a"))
    assert info.value.status == 409
    assert status_of(info.value)["reason"] == "AlreadyExists"
    assert status_of(info.value)["message"] == 'configmaps "a" already exists'


def test_update_with_stale_resource_version_conflicts(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    first = core.create_namespaced_config_map("default", config_map("a"))
    first.data = {"k": "v2"}
    updated = core.replace_namespaced_config_map("a", "default", first)
    assert int(updated.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"k": "v3"}  # still carries the old resourceVersion
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("a", "default", first)
    assert info.value.status == 409
    assert status_of(info.value)["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please '
        "apply your changes to the latest version and try again"
    )


def test_missing_namespace(api_client: client.ApiClient) -> None:
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api_client).create_namespaced_config_map("nowhere", config_map("a"))
    assert info.value.status == 404
    assert status_of(info.value)["message"] == 'namespaces "nowhere" not found'


def test_generation_counts_spec_changes_only(api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(api_client)
    # patches, not read-modify-replace: the controller writes status meanwhile (a stale
    # resourceVersion would rightly get 409, as on a real cluster)
    d = apps.create_namespaced_deployment("default", deployment("web"))
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 2}})
    assert d.metadata.generation == 2


# --- validation ------------------------------------------------------------------------------


def deployment(name: str, image: str = "pipedreamer-engine:latest", **pod: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}], **pod},
            },
        },
    }


def invalid(fn: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        fn(*args)
    assert info.value.status == 422, info.value.body
    body = status_of(info.value)
    assert body["reason"] == "Invalid"
    return body


def test_invalid_configmap_name(api_client: client.ApiClient) -> None:
    body = invalid(
        client.CoreV1Api(api_client).create_namespaced_config_map, "default", config_map("Bad_Name")
    )
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase '
        "RFC 1123 subdomain must consist of"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_invalid_configmap_keys(api_client: client.ApiClient) -> None:
    body = invalid(
        client.CoreV1Api(api_client).create_namespaced_config_map,
        "default",
        config_map("a", {"nodes/a.ts": "x", "..x": "y"}),
    )
    causes = {c["field"]: c["message"] for c in body["details"]["causes"]}
    assert causes["data[nodes/a.ts]"].startswith(
        'Invalid value: "nodes/a.ts": a valid config key must consist of alphanumeric '
        "characters, '-', '_' or '.'"
    )
    assert causes["data[..x]"] == "Invalid value: \"..x\": must not start with '..'"


def test_configmap_over_one_mib(api_client: client.ApiClient) -> None:
    big = "x" * (1024 * 1024)
    body = invalid(
        client.CoreV1Api(api_client).create_namespaced_config_map,
        "default",
        config_map("a", {"big": big, "k": "v"}),
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTooLong",
            "field": "",
            "message": "Too long: may not be more than 1048576 bytes",
        }
    ]
    client.CoreV1Api(api_client).create_namespaced_config_map(
        "default", config_map("b", {"big": big})
    )  # exactly 1 MiB is accepted


def test_invalid_labels(api_client: client.ApiClient) -> None:
    body = invalid(
        client.CoreV1Api(api_client).create_namespaced_config_map,
        "default",
        config_map("a", labels={"bad key": "ok", "ok": "bad value!"}),
    )
    messages = [c["message"] for c in body["details"]["causes"]]
    assert any(
        m.startswith('Invalid value: "bad key": name part must consist of') for m in messages
    )
    assert any(
        m.startswith('Invalid value: "bad value!": a valid label must be an empty string')
        for m in messages
    )


def test_cronjob_name_longer_than_52(api_client: client.ApiClient) -> None:
    name = "c" * 53
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "curl"}],
                        }
                    }
                }
            },
        },
    }
    body = invalid(client.BatchV1Api(api_client).create_namespaced_cron_job, "default", cron)
    assert body["message"] == (
        f'CronJob "{name}" is invalid: metadata.name: Invalid value: '
        f'"{name}": must be no more than 52 characters'
    )


def test_selector_must_match_template_and_is_immutable(api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(api_client)
    bad = deployment("web")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    body = invalid(apps.create_namespaced_deployment, "default", bad)
    assert "`selector` does not match template `labels`" in body["message"]
    apps.create_namespaced_deployment("default", deployment("web"))
    labels = {"app": "web", "tier": "x"}
    body = invalid(
        apps.patch_namespaced_deployment,
        "web",
        "default",
        {
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}},
            }
        },
    )
    assert (
        "spec.selector: Invalid value" in body["message"]
        and "field is immutable" in body["message"]
    )


def test_pod_with_unknown_runtime_class_is_rejected(api_client: client.ApiClient) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"runtimeClassName": "kata", "containers": [{"name": "c", "image": "x"}]},
    }
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api_client).create_namespaced_pod("default", pod)
    assert info.value.status == 403
    assert status_of(info.value)["message"] == (
        'pods "p" is forbidden: pod rejected: RuntimeClass "kata" not found'
    )


# --- watch ---------------------------------------------------------------------------------


def test_watch_from_resource_version_sees_later_changes_in_order(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("a"))
    core.patch_namespaced_config_map("a", "default", {"data": {"k": "v2"}})
    core.delete_namespaced_config_map("a", "default")
    seen = []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].data))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", {"k": "v"}), ("MODIFIED", {"k": "v2"}), ("DELETED", {"k": "v2"})]


def test_watch_without_resource_version_starts_with_current_objects(
    api_client: client.ApiClient,
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", config_map("a"))
    w = watch.Watch()
    first = next(iter(w.stream(core.list_namespaced_config_map, "default", timeout_seconds=5)))
    w.stop()
    assert first["type"] == "ADDED" and first["object"].metadata.name == "a"


def test_watch_with_field_selector(api_client: client.ApiClient) -> None:
    core = client.CoreV1Api(api_client)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", config_map("a"))
    core.create_namespaced_config_map("default", config_map("b"))
    w = watch.Watch()
    event = next(
        iter(
            w.stream(
                core.list_namespaced_config_map,
                "default",
                field_selector="metadata.name=b",
                resource_version=start,
                timeout_seconds=5,
            )
        )
    )
    w.stop()
    assert event["object"].metadata.name == "b"


def test_watch_from_an_expired_resource_version_gets_410(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    for i in range(3):
        core.create_namespaced_config_map("default", config_map(f"c{i}"))
    cluster.call(lambda: cluster.store.compact(cluster.store.rv - 1))
    with pytest.raises(ApiException) as info:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version="1", timeout_seconds=2
        ):
            pass
    assert info.value.status == 410


# --- server-side apply ------------------------------------------------------------------------


def apply_cm(
    api_client: client.ApiClient,
    body: dict[str, Any],
    manager: str = "pdwatch",
    force: bool = False,
) -> Any:
    return client.CoreV1Api(api_client).patch_namespaced_config_map(
        body["metadata"]["name"],
        "default",
        body,
        field_manager=manager,
        force=force,
        _content_type=APPLY,
    )


def test_apply_creates_and_records_managed_fields(api_client: client.ApiClient) -> None:
    cm = apply_cm(api_client, config_map("a", {"x": "1"}, labels={"app": "a"}))
    (entry,) = cm.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.fields_type) == ("pdwatch", "Apply", "FieldsV1")
    assert entry.fields_v1 == {"f:data": {"f:x": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}


def test_reapplying_the_same_content_changes_nothing(api_client: client.ApiClient) -> None:
    first = apply_cm(api_client, config_map("a"))
    again = apply_cm(api_client, config_map("a"))
    assert again.metadata.resource_version == first.metadata.resource_version


def test_apply_removes_fields_it_no_longer_applies(api_client: client.ApiClient) -> None:
    apply_cm(api_client, config_map("a", {"x": "1", "y": "2"}))
    assert apply_cm(api_client, config_map("a", {"x": "1"})).data == {"x": "1"}


def test_apply_conflicts_with_another_manager_unless_forced(api_client: client.ApiClient) -> None:
    apply_cm(api_client, config_map("a", {"x": "1"}), manager="kubectl")
    with pytest.raises(ApiException) as info:
        apply_cm(api_client, config_map("a", {"x": "2"}), manager="pdwatch")
    assert info.value.status == 409
    body = status_of(info.value)
    assert body["reason"] == "Conflict"
    assert (
        body["message"] == 'Apply failed with 1 conflict: conflict with "kubectl" using v1: .data.x'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl" using v1',
            "field": ".data.x",
        }
    ]
    taken = apply_cm(api_client, config_map("a", {"x": "2"}), manager="pdwatch", force=True)
    assert taken.data == {"x": "2"}
    owners = {e.manager: e.fields_v1 for e in taken.metadata.managed_fields}
    assert owners == {"pdwatch": {"f:data": {"f:x": {}}}}


def test_same_value_is_shared_not_a_conflict(api_client: client.ApiClient) -> None:
    apply_cm(api_client, config_map("a", {"x": "1"}), manager="kubectl")
    shared = apply_cm(api_client, config_map("a", {"x": "1"}), manager="pdwatch")
    assert {e.manager for e in shared.metadata.managed_fields} == {"kubectl", "pdwatch"}


def test_update_by_another_manager_is_taken_back_by_forced_apply(
    api_client: client.ApiClient,
) -> None:
    apps = client.AppsV1Api(api_client)
    body = deployment("web")
    apps.patch_namespaced_deployment(
        "web", "default", body, field_manager="pdwatch", force=True, _content_type=APPLY
    )
    apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})  # kubectl edit
    with pytest.raises(ApiException) as info:
        apps.patch_namespaced_deployment(
            "web", "default", body, field_manager="pdwatch", _content_type=APPLY
        )
    assert (
        'conflict with "OpenAPI-Generator" using apps/v1: .spec.replicas'
        in status_of(info.value)["message"]
    )
    back = apps.patch_namespaced_deployment(
        "web", "default", body, field_manager="pdwatch", force=True, _content_type=APPLY
    )
    assert back.spec.replicas == 1


def test_apply_needs_a_field_manager(cluster: EmbeddedCluster) -> None:
    status, body = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        json.dumps(config_map("a")).encode(),
        APPLY,
    )
    assert status == 400
    assert body["message"] == "fieldManager is required for apply requests"


def test_apply_of_an_associative_list_merges_items_by_key(api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(api_client)
    body = deployment("web")
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apps.patch_namespaced_deployment(
        "web", "default", body, field_manager="pdwatch", _content_type=APPLY
    )
    sidecar = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "c", "env": [{"name": "B", "value": "2"}]}]}
            }
        },
    }
    merged = apps.patch_namespaced_deployment(
        "web", "default", sidecar, field_manager="other", _content_type=APPLY
    )
    env = merged.spec.template.spec.containers[0].env
    assert [(e.name, e.value) for e in env] == [("B", "2"), ("A", "1")]


# --- other patch types -----------------------------------------------------------------------


def test_strategic_merge_patch_merges_containers_by_name(api_client: client.ApiClient) -> None:
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment("default", deployment("web"))
    patched = apps.patch_namespaced_deployment(
        "web",
        "default",
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                    "spec": {"containers": [{"name": "c", "image": "other:1"}]},
                }
            }
        },
    )
    (container,) = patched.spec.template.spec.containers
    assert container.image == "other:1"
    assert patched.spec.template.metadata.annotations == {
        "kubectl.kubernetes.io/restartedAt": "now"
    }


def test_merge_and_json_patch(cluster: EmbeddedCluster, api_client: client.ApiClient) -> None:
    client.CoreV1Api(api_client).create_namespaced_config_map(
        "default", config_map("a", {"x": "1", "y": "2"})
    )
    status, body = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        {"data": {"x": None, "z": "3"}},
        "application/merge-patch+json",
    )
    assert status == 200 and body["data"] == {"y": "2", "z": "3"}
    status, body = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        [{"op": "replace", "path": "/data/y", "value": "9"}, {"op": "remove", "path": "/data/z"}],
        "application/json-patch+json",
    )
    assert status == 200 and body["data"] == {"y": "9"}
    status, body = raw(
        cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        [{"op": "test", "path": "/data/y", "value": "0"}],
        "application/json-patch+json",
    )
    assert status == 422


def test_self_subject_access_review(cluster: EmbeddedCluster, api_client: client.ApiClient) -> None:
    auth = client.AuthorizationV1Api(api_client)

    def review(verb: str, resource: str) -> bool:
        body = {
            "spec": {
                "resourceAttributes": {"verb": verb, "resource": resource, "namespace": "default"}
            }
        }
        return bool(auth.create_self_subject_access_review(body).status.allowed)

    assert review("patch", "deployments")
    cluster.forbid("patch", "deployments")
    assert not review("patch", "deployments")
    with pytest.raises(ApiException) as info:
        client.AppsV1Api(api_client).patch_namespaced_deployment("web", "default", {})
    assert info.value.status == 403


def test_chunked_lists_walk_in_name_order_and_count_only_unfiltered(
    api_client: client.ApiClient,
) -> None:
    """apiserver storage/etcd3/store.go GetList: pages in key order with a continue token;
    remainingItemCount "only if the predicate is empty" (nil with a selector)."""
    core = client.CoreV1Api(api_client)
    names = [f"cm-{i:02d}" for i in range(7)]
    for name in reversed(names):  # created out of order
        labels = {"odd": "yes"} if int(name[-2:]) % 2 else {}
        core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": labels}, "data": {}}
        )
    seen, token, counts = [], None, []
    while True:
        page = core.list_namespaced_config_map("default", limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        counts.append(page.metadata.remaining_item_count)
        token = page.metadata._continue
        if not token:
            break
    assert [n for n in seen if n.startswith("cm-")] == names
    assert counts[0] == len(seen) - 3 and counts[-1] is None
    odd = core.list_namespaced_config_map("default", limit=2, label_selector="odd=yes")
    assert [i.metadata.name for i in odd.items] == ["cm-01", "cm-03"]
    assert odd.metadata._continue and odd.metadata.remaining_item_count is None
    rest = core.list_namespaced_config_map(
        "default", limit=2, label_selector="odd=yes", _continue=odd.metadata._continue
    )
    assert [i.metadata.name for i in rest.items] == ["cm-05"] and not rest.metadata._continue


def test_events_expire_after_the_event_ttl() -> None:
    """The API server's --event-ttl (1 h): an Event goes once that long has passed since it
    was last written (issue 29 §11: they never expired, and a demo machine left running
    filled up). Here with a 2 s TTL; a fresh Event stays."""
    import time

    from devloop.sim import SimSettings

    with EmbeddedCluster(SimSettings(event_ttl=2.0)) as cluster:
        core = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))

        def event(name: str, when: str) -> dict[str, Any]:
            return {
                "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "Test",
                "message": name,
                "lastTimestamp": when,
            }

        old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        core.create_namespaced_event("default", event("old", old))
        core.create_namespaced_event(
            "default",
            event("fresh", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))),
        )
        deadline = time.monotonic() + 10
        while "old" in {e.metadata.name for e in core.list_namespaced_event("default").items}:
            assert time.monotonic() < deadline, "the old Event never expired"
            time.sleep(0.05)
        assert "fresh" in {e.metadata.name for e in core.list_namespaced_event("default").items}


def test_a_large_list_is_streamed_and_reads_as_the_same_list(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    """A list longer than STREAMED_LIST is encoded and sent a chunk at a time (one large
    list held every other request up: /version took 7.3 s, issue 29 §11); what the
    clients read is the list they read before: the same items, kind, resourceVersion, and
    a selector still filters."""
    from devloop.sim.server import STREAMED_LIST

    core = client.CoreV1Api(api_client)
    count = STREAMED_LIST + 20
    for i in range(count):
        labels = {"half": "yes"} if i % 2 else {}
        core.create_namespaced_config_map("default", config_map(f"cm-{i:04d}", labels=labels))
    http = urllib3.PoolManager()
    response = http.request("GET", f"{cluster.url}/api/v1/namespaces/default/configmaps")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.headers
    body = json.loads(response.data)
    assert (body["kind"], body["apiVersion"]) == ("ConfigMapList", "v1")
    names = [item["metadata"]["name"] for item in body["items"]]
    assert names == [f"cm-{i:04d}" for i in range(count)]
    assert all("kind" not in item and "apiVersion" not in item for item in body["items"])
    paged = core.list_namespaced_config_map("default", limit=count + 1)
    assert body["metadata"]["resourceVersion"] == paged.metadata.resource_version
    assert [i["data"] for i in body["items"]] == [i.data for i in paged.items]
    typed = core.list_namespaced_config_map("default", label_selector="half=yes")
    assert [c.metadata.name for c in typed.items] == names[1::2]
