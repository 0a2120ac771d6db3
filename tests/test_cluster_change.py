"""What the idle monitor makes of what it sees in the cluster
(devloop.workflowstate.cluster_change): a table of cases, pure, in milliseconds.
The loop acts on `redeploy`, never on the words."""

from __future__ import annotations

from typing import Any

import pytest

from devloop.kube.plan import SOURCE_ANNOTATION
from devloop.workflowstate import ClusterChange, cluster_change

KNOWN = {"metadata": {"name": "hello", "uid": "u1", "generation": 3}}


def deployment(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "hello", "uid": "u1", "generation": 3, **meta}}


def pod(name: str, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **meta}}


EDITED_BY_KUBECTL = deployment(
    generation=4,
    managedFields=[{"manager": "kubectl-edit", "fieldsV1": {"f:spec": {}}, "time": "t"}],
)
DEPLOYED_ELSEWHERE = deployment(generation=4, annotations={SOURCE_ANNOTATION: "/home/b/hello"})


@pytest.mark.parametrize(
    ("source", "event", "obj", "serving", "expected"),
    [
        ("Deployment", "SYNCED", {"names": ["hello"]}, "p", None),
        (
            "Deployment",
            "SYNCED",
            {"names": []},
            "p",
            ClusterChange("deployment hello was deleted", redeploy=True),
        ),
        (
            "Deployment",
            "DELETED",
            deployment(),
            "p",
            ClusterChange("deployment hello was deleted", redeploy=True),
        ),
        # recreated under the same name by someone else: ours is gone
        (
            "Deployment",
            "ADDED",
            deployment(uid="u2"),
            "p",
            ClusterChange("deployment hello was deleted", redeploy=True),
        ),
        ("Deployment", "MODIFIED", deployment(), "p", None),  # status only
        (
            "Deployment",
            "MODIFIED",
            EDITED_BY_KUBECTL,
            "p",
            ClusterChange("deployment hello was changed by kubectl-edit"),
        ),
        (
            "Deployment",
            "MODIFIED",
            DEPLOYED_ELSEWHERE,
            "p",
            ClusterChange(
                "deployment hello was deployed from /home/b/hello: that directory's files "
                "run now, not these (a save here deploys them again)"
            ),
        ),
        ("Pod", "SYNCED", {"names": ["p"]}, "p", None),
        ("Pod", "SYNCED", {"names": []}, "p", ClusterChange("pod p is gone")),
        ("Pod", "SYNCED", {"names": []}, "", None),  # nothing served yet
        ("Pod", "DELETED", pod("p"), "p", ClusterChange("pod p was deleted")),
        (
            "Pod",
            "MODIFIED",
            pod("p", deletionTimestamp="t"),
            "p",
            ClusterChange("pod p was deleted"),
        ),
        ("Pod", "DELETED", pod("other"), "p", None),
        ("Pod", "MODIFIED", pod("p"), "p", None),
    ],
)
def test_what_a_change_in_the_cluster_calls_for(
    source: str, event: str, obj: dict[str, Any], serving: str, expected: ClusterChange | None
) -> None:
    assert cluster_change(source, event, obj, KNOWN, serving) == expected


def test_a_generation_missing_counts_as_none() -> None:
    """A Deployment without metadata.generation (as some fakes and old objects have) is at
    generation 0: newer than nothing, older than anything."""
    bare = {"metadata": {"name": "hello", "uid": "u1"}}
    assert cluster_change("Deployment", "MODIFIED", bare, KNOWN, "p") is None
    assert cluster_change("Deployment", "MODIFIED", bare, bare, "p") is None
    first = {"metadata": {"name": "hello", "uid": "u1", "generation": 1}}
    assert cluster_change("Deployment", "MODIFIED", first, bare, "p") == ClusterChange(
        "deployment hello was changed by someone else"
    )


def test_pdwatch_is_never_who_changed_it() -> None:
    """pdwatch's own later write does not hide the one it did not make."""
    written = deployment(
        generation=4,
        managedFields=[
            {"manager": "kubectl-edit", "fieldsV1": {"f:spec": {}}, "time": "2026-01-01"},
            {"manager": "pdwatch", "fieldsV1": {"f:spec": {}}, "time": "2026-01-02"},
        ],
    )
    assert cluster_change("Deployment", "MODIFIED", written, KNOWN, "p") == ClusterChange(
        "deployment hello was changed by kubectl-edit"
    )


@pytest.mark.parametrize(
    ("known_source", "live_source"),
    [
        ("/home/a/hello", "/home/a/hello"),  # the same directory's deploy, changed by hand
        ("/home/a/hello", ""),  # someone's apply dropped the annotation
    ],
)
def test_only_another_directory_is_said_as_deployed_from(
    known_source: str, live_source: str
) -> None:
    known = deployment(annotations={SOURCE_ANNOTATION: known_source})
    live = deployment(
        generation=4,
        annotations={SOURCE_ANNOTATION: live_source} if live_source else {},
        managedFields=[{"manager": "kubectl-edit", "fieldsV1": {"f:spec": {}}, "time": "t"}],
    )
    assert cluster_change("Deployment", "MODIFIED", live, known, "p") == ClusterChange(
        "deployment hello was changed by kubectl-edit"
    )
