"""kube/plan.py's smaller decisions, each as a table of cases: where a rollout stands, who
changed an object, which objects are not the workflow's, what is compared how. Written
after a mutation run found them untested by any fast test (BENCHMARKS.md)."""

from __future__ import annotations

from typing import Any

import pytest

from devloop.kube import plan
from devloop.manifests import CONTENT_HASH_ANNOTATION, SECRET_VERSION_ANNOTATION

OURS = {"app.kubernetes.io/name": "hello", "app.kubernetes.io/managed-by": "pipedreamer"}


def deployment(spec: dict[str, Any], status: dict[str, Any], generation: int = 2) -> Any:
    return {
        "metadata": {"name": "hello", "generation": generation},
        "spec": spec,
        "status": status,
    }


DONE = {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "hello-1" has timed out progressing.',
}


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"replicas": 1}, DONE, (plan.COMPLETE, "")),
        ({}, DONE, (plan.COMPLETE, "")),  # replicas defaults to 1
        (
            {"replicas": 1, "paused": True},
            {**DONE, "observedGeneration": 1},
            (plan.PAUSED, "deployment hello is paused"),
        ),
        (
            {"replicas": 1},
            {**DONE, "observedGeneration": 1},
            (plan.PROGRESSING, "waiting for the controller to see the change"),
        ),
        (
            {"replicas": 1},
            {**DONE, "conditions": [{"type": "Available", "reason": "X"}, DEADLINE]},
            (plan.DEADLINE, 'ReplicaSet "hello-1" has timed out progressing.'),
        ),
        (  # the reason alone is not enough: it must be the Progressing condition's
            {"replicas": 1},
            {**DONE, "conditions": [{"type": "Available", "reason": "ProgressDeadlineExceeded"}]},
            (plan.COMPLETE, ""),
        ),
        (
            {"replicas": 1},
            {**DONE, "conditions": [{**DEADLINE, "message": None}]},
            (plan.DEADLINE, ""),
        ),
        (
            {"replicas": 2},
            {**DONE, "replicas": 2},
            (plan.PROGRESSING, "1 of 2 new replicas updated"),
        ),
        (
            {"replicas": 1},
            {**DONE, "replicas": 2},
            (plan.PROGRESSING, "old replicas are pending termination"),
        ),
        (
            {"replicas": 1},
            {**DONE, "availableReplicas": 0},
            (plan.PROGRESSING, "waiting for the new pod to be available"),
        ),
        (
            {"replicas": 1},
            {"observedGeneration": 2},
            (plan.PROGRESSING, "0 of 1 new replicas updated"),
        ),
    ],
)
def test_rollout_status(
    spec: dict[str, Any], status: dict[str, Any], expected: tuple[str, str]
) -> None:
    got = plan.rollout_status(deployment(spec, status))
    assert (got.state, got.message) == expected


def test_rollout_status_of_an_object_without_generation_or_status() -> None:
    got = plan.rollout_status({"metadata": {"name": "x"}, "spec": {"replicas": 0}})
    assert got.state == plan.COMPLETE


def entry(manager: str, time: str, spec: bool = True, subresource: str = "") -> Any:
    out: dict[str, Any] = {"manager": manager, "time": time, "fieldsV1": {}}
    if spec:
        out["fieldsV1"] = {"f:spec": {}}
    if subresource:
        out["subresource"] = subresource
    return out


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([], "someone else"),
        ([entry("pdwatch", "2026-01-01T00:00:03Z")], "someone else"),
        (
            [
                entry("pdwatch", "2026-01-01T00:00:09Z"),
                entry("kubectl-set", "2026-01-01T00:00:02Z"),
                entry("kubectl-rollout", "2026-01-01T00:00:05Z"),
            ],
            "kubectl-rollout",  # the latest other writer
        ),
        (  # the controller's revision annotation is not a change of the spec
            [
                entry("kubectl-edit", "2026-01-01T00:00:02Z"),
                entry("kube-controller-manager", "2026-01-01T00:00:08Z", spec=False),
            ],
            "kubectl-edit",
        ),
        (  # nobody wrote the spec: the latest writer of anything
            [
                entry("a", "2026-01-01T00:00:02Z", spec=False),
                entry("b", "2026-01-01T00:00:01Z", spec=False),
            ],
            "a",
        ),
        (  # status is written through the subresource: never a change of the spec
            [
                entry("kubectl-scale", "2026-01-01T00:00:01Z"),
                entry("kube-controller-manager", "2026-01-01T00:00:09Z", subresource="status"),
            ],
            "kubectl-scale",
        ),
        ([{"time": "2026-01-01T00:00:01Z", "fieldsV1": {"f:spec": {}}}], "someone else"),
    ],
)
def test_changed_by(fields: list[Any], expected: str) -> None:
    assert plan.changed_by({"metadata": {"managedFields": fields}}, "pdwatch") == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, []),
        ({"kind": "Service", "metadata": {"name": "hello", "labels": OURS}}, []),
        (  # once written by pdwatch (an older label set): still pdwatch's
            {
                "kind": "Service",
                "metadata": {"name": "hello", "managedFields": [{"manager": "pdwatch"}]},
            },
            [],
        ),
        (
            {
                "kind": "Service",
                "metadata": {
                    "name": "hello",
                    "labels": {"team": "b", "app": "hello"},
                    "managedFields": [{"manager": "kubectl-create"}, {"manager": "helm"}],
                },
            },
            ["Service hello (app=hello, team=b; written by helm, kubectl-create)"],
        ),
        (
            {"metadata": {"name": "hello"}},
            ["object hello (no labels; written by unknown)"],
        ),
        (
            {"kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [{"x": 1}]}},
            ["ConfigMap c (no labels; written by unknown)"],
        ),
    ],
)
def test_foreign(obj: Any, expected: list[str]) -> None:
    assert plan.foreign([obj], "hello", "pdwatch") == expected


def test_versions_and_sources_read_from_the_objects() -> None:
    assert plan.secret_version(None) == ""
    assert plan.secret_version({"metadata": {}}) == ""
    assert plan.secret_version({"metadata": {"resourceVersion": 42}}) == "42"
    assert plan.deployed_from(None) == ""
    assert plan.deployed_from({"metadata": {}}) == ""
    made = {"metadata": {"annotations": {plan.SOURCE_ANNOTATION: "host:/w"}}}
    assert plan.deployed_from(made) == "host:/w"


def test_the_wanted_deployment_records_the_secret_and_where_it_came_from() -> None:
    rendered: Any = {
        "kind": "Deployment",
        "metadata": {"name": "hello", "annotations": {"a": "1"}},
        "spec": {
            "template": {"metadata": {"annotations": {CONTENT_HASH_ANNOTATION: "h"}}, "spec": {}}
        },
    }
    wanted = plan.wanted_deployment(rendered, "17", "host:/w")
    template = wanted["spec"]["template"]["metadata"]["annotations"]
    assert template == {CONTENT_HASH_ANNOTATION: "h", SECRET_VERSION_ANNOTATION: "17"}
    own = wanted["metadata"]["annotations"]
    assert own["a"] == "1" and own[plan.SOURCE_ANNOTATION] == "host:/w"
    assert (
        own[plan.APPLIED_ANNOTATION]
        == plan.stamped(
            {
                **wanted,
                "metadata": {
                    **wanted["metadata"],
                    "annotations": {k: v for k, v in own.items() if k != plan.APPLIED_ANNOTATION},
                },
            }
        )["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
    )
    assert rendered["metadata"]["annotations"] == {"a": "1"}  # the input is not changed
    unsourced = plan.wanted_deployment(rendered, "")["metadata"]["annotations"]
    assert plan.SOURCE_ANNOTATION not in unsourced
    bare: Any = {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"template": {"metadata": {}, "spec": {}}},
    }
    assert plan.wanted_deployment(bare, "3")["spec"]["template"]["metadata"] == {
        "annotations": {SECRET_VERSION_ANNOTATION: "3"}
    }


def test_templates_differ() -> None:
    a: Any = {"spec": {"template": {"x": 1}}}
    assert plan.templates_differ(None, a)
    assert not plan.templates_differ(a, {"spec": {"template": {"x": 1}, "replicas": 3}})
    assert plan.templates_differ(a, {"spec": {"template": {"x": 2}}})


@pytest.mark.parametrize(
    ("live", "wanted", "same"),
    [
        ("500m", "0.5", True),
        ("1", "1000m", True),
        ("128Mi", "134217728", True),
        ("1Gi", "1024Mi", True),
        ("1k", "1000", True),
        ("2M", "2000000", True),
        ("1G", "1000M", True),
        ("1T", "1000G", True),
        ("1Ti", "1024Gi", True),
        ("1Ki", "1024", True),
        ("+1", "1", True),
        ("1Mi", "1M", False),
        ("100m", "1", False),
        ("1x", "1x", True),  # equal text is equal whatever it means
        ("1x", "1", False),  # an unknown suffix compares as text
        ("1", "1x", False),
        ("abc", "abc", True),
        ("1.2.3", "1.2.3m", False),  # not a number
        ("-1", "-1000m", True),
    ],
)
def test_same_quantity(live: str, wanted: str, same: bool) -> None:
    assert plan.same_quantity(live, wanted) is same


@pytest.mark.parametrize(
    ("live", "wanted", "path", "holds"),
    [
        ({"a": 1, "b": 2}, {"a": 1}, "", True),
        ({"a": 1}, {"a": 1, "b": 2}, "", False),
        ({"a": 1}, {"a": 2}, "", False),
        ("x", {"a": 1}, "", False),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, "", True),
        ({"a": {"b": 2}}, {"a": {"b": 1}}, "", False),
        ([1, 2], [1, 2], "", True),
        ([1, 2], [2, 1], "", False),
        ({"a": 1}, [1], "", False),
        ([], [], "", True),
        (1, True, "", False),  # 1 == True in Python, not in JSON
        (True, True, "", True),
        ("500m", "0.5", ".spec.resources.limits.cpu", True),
        ("500m", "0.5", ".spec.other", False),
        # lists of objects merged by a key, whatever the order; extra live items kept
        (
            [{"name": "b", "v": 2}, {"name": "a", "v": 1, "x": 0}],
            [{"name": "a", "v": 1}],
            "",
            True,
        ),
        ([{"name": "a", "v": 2}], [{"name": "a", "v": 1}], "", False),
        ([{"name": "b"}], [{"name": "a"}], "", False),
        ([{"mountPath": "/p", "name": "v"}], [{"mountPath": "/p"}], "", True),
        ([{"containerPort": 1}, "junk"], [{"containerPort": 1}], "", True),
        # without a key common to the wanted items: an atomic list, in order
        ([{"x": 1}, {"y": 2}], [{"x": 1}, {"y": 2}], "", True),
        ([{"y": 2}, {"x": 1}], [{"x": 1}, {"y": 2}], "", False),
        ([{"x": 1}], [{"x": 1}, {"y": 2}], "", False),
        ([{"x": 1, "z": 0}], [{"x": 1}], "", True),
        ("x", [{"name": "a"}], "", False),
    ],
)
def test_contains(live: Any, wanted: Any, path: str, holds: bool) -> None:
    assert plan.contains(live, wanted, path) is holds


def test_the_first_key_all_wanted_items_have_matches_them() -> None:
    """`name` on one wanted item only: the items are matched by `port`, which all have;
    with `name` on all, by `name` first."""
    live = [{"port": 2, "name": "b"}, {"port": 1}]
    assert plan.contains(live, [{"port": 1}, {"port": 2, "name": "b"}])
    assert not plan.contains([{"name": "b", "port": 1}], [{"name": "a", "port": 1}])


def test_the_applied_digest_leaves_secret_values_out_and_keeps_other_annotations() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"k": "v"}},
        "data": {"a": "eA=="},
    }
    other = {**secret, "data": {"a": "eQ=="}}
    made = plan.stamped(secret)
    assert made["metadata"]["annotations"]["k"] == "v"
    assert made["data"] == {"a": "eA=="}  # the values themselves are applied
    digest = made["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
    assert len(digest) == 16
    assert digest == plan.stamped(other)["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
    config = {**secret, "kind": "ConfigMap"}
    changed = {**config, "data": {"a": "eQ=="}}
    assert (
        plan.stamped(config)["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
        != plan.stamped(changed)["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
    )
    assert "annotations" not in {"kind": "X", "metadata": {"name": "n"}}["metadata"]
    assert plan.stamped({"kind": "X", "metadata": {"name": "n"}})["metadata"]["annotations"]


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> Any:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def test_plan_objects_reasons_and_what_is_pruned() -> None:
    code = cm("hello-code", OURS, a="1")
    service = {"kind": "Service", "metadata": {"name": "hello", "labels": OURS}, "spec": {}}
    secret = {"kind": "Secret", "metadata": {"name": "hello-secrets", "labels": OURS}, "data": {}}
    imports = cm("hello-import-map", OURS)
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "hello-netpol", "labels": OURS}}
    held = plan.Live.of(plan.stamped(code), secret, None, imports, policy)
    got = plan.plan_objects(held, [code, service], "hello")
    assert [m["metadata"]["name"] for m in got.apply] == ["hello"]
    assert got.reasons == ("Service/hello is missing",)
    assert got.prune == (
        ("ConfigMap", "hello-import-map"),
        ("NetworkPolicy", "hello-netpol"),
        ("Secret", "hello-secrets"),
    )
    # wanted, or not the workflow's: kept
    theirs = plan.Live.of(
        plan.stamped(code),
        {**secret, "metadata": {"name": "hello-secrets"}},
        imports,
        {**policy, "metadata": {"name": "hello-netpol", "labels": {}}},
    )
    kept = plan.plan_objects(theirs, [code, imports], "hello")
    assert kept.prune == ()
    assert [m["metadata"]["name"] for m in kept.apply] == ["hello-import-map"]
    assert kept.reasons == ("ConfigMap/hello-import-map differs",)
    wanted_secret = plan.plan_objects(plan.Live.of(secret), [secret], "hello")
    assert wanted_secret.prune == ()
    assert wanted_secret.reasons == ("Secret/hello-secrets differs",)


def test_the_snapshot_and_the_import_map_are_compared_with_their_own_live_objects() -> None:
    snapshot = cm("hello-code-abc", OURS, a="1")
    imports = cm("hello-import-map", OURS, b="2")
    live = plan.Live.of(plan.stamped(snapshot), plan.stamped(imports))
    assert plan.plan_objects(live, [snapshot, imports], "hello").apply == ()


def test_plan_objects_compares_each_kind_with_its_live_object() -> None:
    service = {"kind": "Service", "metadata": {"name": "hello", "labels": OURS}, "spec": {"a": 1}}
    policy = {"kind": "NetworkPolicy", "metadata": {"name": "hello-netpol", "labels": OURS}}
    cron = {"kind": "CronJob", "metadata": {"name": "hello-a", "labels": OURS}, "spec": {}}
    new_cron = {"kind": "CronJob", "metadata": {"name": "hello-b", "labels": OURS}, "spec": {}}
    live = plan.Live.of(plan.stamped(service), plan.stamped(cron), plan.stamped(policy))
    got = plan.plan_objects(live, [service, policy, cron, new_cron], "hello")
    assert got.reasons == ("CronJob/hello-b is missing",)
    assert got.prune == ()


def test_foreign_goes_through_every_object() -> None:
    ours = {"kind": "Service", "metadata": {"name": "a", "labels": OURS}}
    written = {
        "kind": "Service",
        "metadata": {"name": "b", "managedFields": [{"manager": "pdwatch"}]},
    }
    theirs = {"kind": "Service", "metadata": {"name": "c", "managedFields": [{}]}}
    assert plan.foreign([ours, written, None, theirs], "hello", "pdwatch") == [
        "Service c (no labels; written by unknown)"
    ]


def test_template_hash() -> None:
    assert plan.template_hash(None) is None
    bare: Any = {"spec": {"template": {}}}
    assert plan.template_hash(bare) is None
    hashed: Any = {
        "spec": {"template": {"metadata": {"annotations": {CONTENT_HASH_ANNOTATION: 7}}}}
    }
    assert plan.template_hash(hashed) == "7"


def test_quantities_compare_by_value_deep_in_the_object() -> None:
    """The path that says "resources" is carried down through maps and both kinds of list."""
    live = {"spec": {"containers": [{"name": "e", "resources": {"limits": {"cpu": "500m"}}}]}}
    wanted = {"spec": {"containers": [{"name": "e", "resources": {"limits": {"cpu": "0.5"}}}]}}
    assert plan.contains(live, wanted)
    atomic_live = {"x": [{"resources": {"requests": {"memory": "1Gi"}}}]}
    atomic_wanted = {"x": [{"resources": {"requests": {"memory": "1024Mi"}}}]}
    assert plan.contains(atomic_live, atomic_wanted)


def test_any_kind_is_planned_as_data() -> None:
    """A kind pdwatch has no slot for (here a PodDisruptionBudget) is applied when
    wanted and pruned when live, the workflow's and no longer wanted."""
    budget = {"kind": "PodDisruptionBudget", "metadata": {"name": "hello", "labels": OURS}}
    assert plan.plan_objects(plan.Live(), [budget], "hello").reasons == (
        "PodDisruptionBudget/hello is missing",
    )
    assert plan.plan_objects(plan.Live.of(budget), [], "hello").prune == (
        ("PodDisruptionBudget", "hello"),
    )
    theirs = {**budget, "metadata": {"name": "hello", "labels": {}}}
    assert plan.plan_objects(plan.Live.of(theirs), [], "hello").prune == ()


def test_live_objects_by_kind_and_name() -> None:
    code = cm("hello", OURS)
    service = {"kind": "Service", "metadata": {"name": "hello"}}
    live = plan.Live.of(None, code, service, None)
    assert live.objects == (code, service)
    assert live.get("ConfigMap", "hello") is code
    assert live.get("Service", "hello") is service
    assert live.get("Service", "other") is None
    assert live.get("Secret", "hello") is None
    assert live.without("ConfigMap").objects == (service,)
