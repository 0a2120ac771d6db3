"""kube/plan.py's decisions as tables: what needs applying, given what the cluster holds."""

from __future__ import annotations

from typing import Any

import pytest

from devloop.kube import plan
from devloop.manifests import MANAGED_BY
from devloop.wfformat import PIPEDREAMER, TENTACULAR

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "hello", "labels": {"app.kubernetes.io/name": "hello"}},
    "spec": {
        "replicas": 1,
        "template": {
            "metadata": {"annotations": {"pdwatch/content-hash": "h1"}},
            "spec": {
                "runtimeClassName": "gvisor",
                "containers": [
                    {"name": "engine", "image": "e:1", "ports": [{"containerPort": 8080}]}
                ],
            },
        },
    },
}


def without_runtime_class(d: dict[str, Any]) -> dict[str, Any]:
    pod = {k: v for k, v in d["spec"]["template"]["spec"].items() if k != "runtimeClassName"}
    template = {**d["spec"]["template"], "spec": pod}
    return {**d, "spec": {**d["spec"], "template": template}}


def with_hash(d: dict[str, Any], value: str) -> dict[str, Any]:
    template = {
        **d["spec"]["template"],
        "metadata": {"annotations": {"pdwatch/content-hash": value}},
    }
    return {**d, "spec": {**d["spec"], "template": template}}


def live(applied: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`applied` as the API server returns it: defaults filled in, status added."""
    obj = plan.stamped(applied)
    spec = {**obj["spec"], "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}
    return {**obj, "spec": spec, "status": {"replicas": 1}, **extra}


@pytest.mark.parametrize(
    ("live_object", "wanted", "force", "expected"),
    [
        (None, DEPLOYMENT, False, (True, False, "the Deployment is missing")),
        (live(DEPLOYMENT), DEPLOYMENT, False, (False, False, "the Deployment is as wanted")),
        (live(DEPLOYMENT), DEPLOYMENT, True, (False, True, "a restart was asked for")),
        (
            live(DEPLOYMENT),
            with_hash(DEPLOYMENT, "h2"),
            False,
            (True, False, "the pods run other code"),
        ),
        # a field pdwatch no longer sets: the live object holds all that is wanted, but
        # was applied from another manifest
        (
            live(DEPLOYMENT),
            without_runtime_class(DEPLOYMENT),
            False,
            (True, False, "the Deployment differs"),
        ),
        # applied by an older pdwatch, without the digest: applied once more
        ({**DEPLOYMENT, "status": {}}, DEPLOYMENT, False, (True, False, "the Deployment differs")),
    ],
)
def test_plan_deployment(
    live_object: dict[str, Any] | None,
    wanted: dict[str, Any],
    force: bool,
    expected: tuple[bool, bool, str],
) -> None:
    step = plan.plan_deployment(live_object, plan.stamped(wanted), force)
    assert (step.apply, step.restart, step.reason) == expected


def test_a_secret_digest_leaves_its_values_out() -> None:
    secret = {"kind": "Secret", "metadata": {"name": "s"}, "data": {"token": "aHVudGVyMg=="}}
    other_value = {**secret, "data": {"token": "c2VjcmV0"}}
    other_key = {**secret, "data": {"api": "aHVudGVyMg=="}}
    digest = plan.stamped(secret)["metadata"]["annotations"][plan.APPLIED_ANNOTATION]
    assert plan.stamped(other_value)["metadata"]["annotations"][plan.APPLIED_ANNOTATION] == digest
    assert plan.stamped(other_key)["metadata"]["annotations"][plan.APPLIED_ANNOTATION] != digest


def test_plan_objects_applies_what_differs_and_prunes_only_its_cronjobs() -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "hello-code"}, "data": {"a": "1"}}
    ours = {
        "kind": "CronJob",
        "metadata": {
            "name": "hello-a",
            "labels": {
                "app.kubernetes.io/name": "hello",
                "app.kubernetes.io/managed-by": MANAGED_BY[PIPEDREAMER],
            },
        },
    }
    # Written when the workflow was in the other format: still the workflow's.
    also_ours = {
        "kind": "CronJob",
        "metadata": {
            "name": "hello-b",
            "labels": {
                "app.kubernetes.io/name": "hello",
                "app.kubernetes.io/managed-by": MANAGED_BY[TENTACULAR],
            },
        },
    }
    theirs = {"kind": "CronJob", "metadata": {"name": "other", "labels": {}}}
    same = plan.plan_objects(plan.Live.of(plan.stamped(cm), ours, also_ours, theirs), [cm], "hello")
    assert not same.apply
    assert same.prune == (("CronJob", "hello-a"), ("CronJob", "hello-b"))
    edited = {**cm, "data": {"a": "2"}}
    changed = plan.plan_objects(plan.Live.of(plan.stamped(cm)), [edited], "hello")
    assert [m["data"] for m in changed.apply] == [{"a": "2"}]
    fewer = {**cm, "data": {}}
    dropped = plan.plan_objects(plan.Live.of(plan.stamped(cm)), [fewer], "hello")
    assert len(dropped.apply) == 1  # a key removed is a change, though the live one holds all
