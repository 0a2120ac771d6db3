"""What a deploy cycle must do, decided from what the cluster runs: pure functions over the
live objects and the bundle, tested with tables of cases.

"What runs" is read from the objects themselves, never from a marker written before the
rollout: the Deployment's pod template carries the content hash of the code
(`pdwatch/content-hash`) and the resourceVersion of the Secret its pods were started
against (`pdwatch/secret-version`), both written by the same request that starts the
rollout. So a cycle cut short anywhere (a failed call, a timeout, pdwatch killed) leaves a
template that still differs from the wanted one, and the next cycle applies it: one
rollout, with the latest content.

An object needs applying when applying it would change it (`contains`): every field the
bundle sets has that value live. Fields others added are not pdwatch's (server-side apply
leaves them); defaults the API server filled in are not differences. A field pdwatch set
before and no longer sets (a `--runtime-class` dropped) is not visible that way, so each
applied object carries a digest of the whole manifest as applied (`pdwatch/applied`,
`stamped`): a manifest with a field fewer has another digest, and its apply removes the
field as server-side apply removes what a manager stops applying.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from devloop.manifests import (
    CONTENT_HASH_ANNOTATION,
    SECRET_VERSION_ANNOTATION,
    Manifest,
    owned_by_workflow,
)

APPLIED_ANNOTATION = "pdwatch/applied"
# Where the Deployment was deployed from (host:directory): two folders, or two sessions,
# deploying one workflow name into one namespace are told apart by it.
SOURCE_ANNOTATION = "pdwatch/source"


def stamped(manifest: Manifest) -> Manifest:
    """The manifest with the digest of itself as applied (a Secret's values left out: a
    digest of a short secret could be searched; its keys are enough, values are compared
    by `contains`)."""
    shown = manifest
    if manifest.get("kind") == "Secret":
        shown = {**manifest, "data": dict.fromkeys(manifest.get("data") or {}, "")}
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]
    metadata = manifest["metadata"]
    annotations = {**(metadata.get("annotations") or {}), APPLIED_ANNOTATION: digest}
    return {**manifest, "metadata": {**metadata, "annotations": annotations}}


# Lists of objects whose items are matched by a key, as server-side apply merges them
# (the OpenAPI's x-kubernetes-list-map-keys); other lists are compared item by item.
LIST_KEYS = ("name", "mountPath", "containerPort", "port", "key", "type")


def contains(live: Any, wanted: Any, path: str = "") -> bool:
    """Whether `live` already holds everything `wanted` sets."""
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return False
        for key, value in wanted.items():
            if key not in live:
                return False
            if not contains(live[key], value, f"{path}.{key}"):
                return False
        return True
    if isinstance(wanted, list):
        if not isinstance(live, list):
            return False
        if all(isinstance(w, dict) for w in wanted) and wanted:
            return _list_contains(live, wanted, path)
        return live == wanted
    if ".resources." in path:
        return same_quantity(live, wanted)
    return bool(live == wanted) and type(live) is type(wanted)


def _list_contains(live: list[Any], wanted: list[dict[str, Any]], path: str) -> bool:
    key = next((k for k in LIST_KEYS if all(k in w for w in wanted)), None)
    if key is None:  # an atomic list: the same items in the same order
        return len(live) == len(wanted) and all(
            contains(lv, w, f"{path}[]") for lv, w in zip(live, wanted, strict=True)
        )
    by_key = {item.get(key): item for item in live if isinstance(item, dict)}
    return all(contains(by_key.get(w[key]), w, f"{path}[]") for w in wanted)


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([a-zA-Z]*)$")
_SUFFIX: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def same_quantity(live: Any, wanted: Any) -> bool:
    """Resource quantities compare by value: the API server writes them canonically
    ("0.5" comes back as "500m")."""
    if live == wanted:
        return True
    a, b = _quantity(live), _quantity(wanted)
    return a is not None and a == b


def _quantity(value: Any) -> Decimal | None:
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIX[match.group(2)])
    except InvalidOperation:
        return None


# --- the objects other than the Deployment ------------------------------------------------


@dataclass(frozen=True)
class Live:
    """What the cluster holds now, read in one parallel round before a cycle: objects of
    any kind, each known by its kind and name. What was read but is not wanted (an import
    map, a Secret, a CronJob, a NetworkPolicy the workflow no longer has) is pruned when it
    is the workflow's, so a new kind is data here, not a new slot."""

    objects: tuple[Manifest, ...] = ()

    @classmethod
    def of(cls, *found: Manifest | None) -> Live:
        """The objects found (None: not there)."""
        return cls(tuple(obj for obj in found if obj is not None))

    def get(self, kind: str, name: str) -> Manifest | None:
        return next(
            (o for o in self.objects if o.get("kind") == kind and o["metadata"]["name"] == name),
            None,
        )

    def without(self, kind: str) -> Live:
        """These objects but those of `kind` (planned on their own: the Deployment)."""
        return Live(tuple(o for o in self.objects if o.get("kind") != kind))


@dataclass(frozen=True)
class ObjectsPlan:
    """What to apply (in this order), and what to delete: (kind, name), sorted."""

    apply: tuple[Manifest, ...]
    prune: tuple[tuple[str, str], ...] = ()
    reasons: tuple[str, ...] = field(default=())


def foreign(objects: list[Manifest | None], workflow_name: str, manager: str) -> list[str]:
    """The live objects that are not the workflow's: neither its labels nor ever written by
    pdwatch's field manager. Each described by its owner's labels and field managers."""
    found = []
    for obj in objects:
        if obj is None or owned_by_workflow(obj, workflow_name):
            continue
        meta = obj.get("metadata") or {}
        managers = sorted({m.get("manager", "") for m in meta.get("managedFields") or []})
        if manager in managers:
            continue
        labels = meta.get("labels") or {}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"
        found.append(
            f"{obj.get('kind', 'object')} {meta.get('name')} ({shown}; written by "
            f"{', '.join(m for m in managers if m) or 'unknown'})"
        )
    return found


def plan_objects(live: Live, wanted: list[Manifest], workflow_name: str) -> ObjectsPlan:
    """`wanted` (in apply order) against what is live: what is missing or differs is
    applied; what is live, the workflow's, and no longer wanted is pruned."""
    current = {(obj.get("kind", ""), obj["metadata"]["name"]): obj for obj in live.objects}
    apply: list[Manifest] = []
    reasons: list[str] = []
    for manifest in map(stamped, wanted):
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        existing = current.get((kind, name))
        if existing is None:
            apply.append(manifest)
            reasons.append(f"{kind}/{name} is missing")
        elif not contains(existing, manifest):
            apply.append(manifest)
            reasons.append(f"{kind}/{name} differs")
    wanted_names = {(m["kind"], m["metadata"]["name"]) for m in wanted}
    prune = sorted(
        key
        for key, obj in current.items()
        if key not in wanted_names and owned_by_workflow(obj, workflow_name)
    )
    return ObjectsPlan(tuple(apply), tuple(prune), tuple(reasons))


# --- the Deployment --------------------------------------------------------------------------


def secret_version(secret: Manifest | None) -> str:
    """What the pod template records of the Secret: its resourceVersion (never its data)."""
    if secret is None:
        return ""
    return str(secret["metadata"].get("resourceVersion", ""))


def deployed_from(deployment: Manifest | None) -> str:
    """Where a live Deployment was deployed from ("" when unknown)."""
    annotations = ((deployment or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SOURCE_ANNOTATION, ""))


def wanted_deployment(rendered: Manifest, secret_rv: str, source: str = "") -> Manifest:
    """The rendered Deployment with the Secret's version in its pod template, and where it
    is deployed from in its own metadata (not the template's: no rollout of its own)."""
    if source:
        meta = rendered["metadata"]
        annotations = {**(meta.get("annotations") or {}), SOURCE_ANNOTATION: source}
        rendered = {**rendered, "metadata": {**meta, "annotations": annotations}}
    template = rendered["spec"]["template"]
    annotations = {**template["metadata"].get("annotations", {})}
    annotations[SECRET_VERSION_ANNOTATION] = secret_rv
    metadata = {**template["metadata"], "annotations": annotations}
    spec = {**rendered["spec"], "template": {**template, "metadata": metadata}}
    return stamped({**rendered, "spec": spec})


def template_hash(deployment: Manifest | None) -> str | None:
    """The content hash the Deployment's pods were started with."""
    if deployment is None:
        return None
    annotations = (deployment["spec"]["template"].get("metadata") or {}).get("annotations") or {}
    value = annotations.get(CONTENT_HASH_ANNOTATION)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class DeploymentPlan:
    apply: bool  # the Deployment differs from the wanted one (the apply rolls out if the
    # template changed)
    restart: bool  # nothing to apply but a restart was asked for: a restartedAt stamp
    reason: str


def plan_deployment(live: Manifest | None, wanted: Manifest, force: bool) -> DeploymentPlan:
    if live is None:
        return DeploymentPlan(True, False, "the Deployment is missing")
    if not contains(live, wanted):
        if template_hash(live) != template_hash(wanted):
            return DeploymentPlan(True, False, "the pods run other code")
        return DeploymentPlan(True, False, "the Deployment differs")
    if force:
        return DeploymentPlan(False, True, "a restart was asked for")
    return DeploymentPlan(False, False, "the Deployment is as wanted")


def templates_differ(before: Manifest | None, after: Manifest) -> bool:
    return before is None or before["spec"]["template"] != after["spec"]["template"]


# --- where the rollout stands ----------------------------------------------------------------


COMPLETE, PROGRESSING, PAUSED, DEADLINE = "complete", "progressing", "paused", "deadline"


@dataclass(frozen=True)
class RolloutStatus:
    state: str
    message: str = ""


def rollout_status(deployment: Manifest) -> RolloutStatus:
    """kubectl's reading of a Deployment (k8s.io/kubectl/pkg/polymorphichelpers,
    rollout_status.go DeploymentStatusViewer.Status), with `spec.paused` first."""
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = deployment["metadata"]["name"]
    if spec.get("paused"):
        return RolloutStatus(PAUSED, f"deployment {name} is paused")
    if status.get("observedGeneration", 0) < deployment["metadata"].get("generation", 0):
        return RolloutStatus(PROGRESSING, "waiting for the controller to see the change")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return RolloutStatus(DEADLINE, condition.get("message") or "")
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < replicas:
        return RolloutStatus(PROGRESSING, f"{updated} of {replicas} new replicas updated")
    if status.get("replicas", 0) > updated:
        return RolloutStatus(PROGRESSING, "old replicas are pending termination")
    if status.get("availableReplicas", 0) < updated:
        return RolloutStatus(PROGRESSING, "waiting for the new pod to be available")
    return RolloutStatus(COMPLETE)


def changed_by(obj: Manifest, ours: str) -> str:
    """The field manager other than `ours` that last wrote the object's spec (not status),
    e.g. kubectl-set, kubectl-rollout; "someone else" when none is recorded."""
    entries = [
        e
        for e in obj["metadata"].get("managedFields") or []
        if not e.get("subresource") and e.get("manager") != ours
    ]
    # The deployment controller writes the revision annotation on the object itself: only
    # a manager that owns part of the spec changed it.
    spec_writers = [e for e in entries if "f:spec" in (e.get("fieldsV1") or {})]
    entries = sorted(spec_writers or entries, key=lambda e: e.get("time") or "")
    return str(entries[-1].get("manager", "someone else")) if entries else "someone else"
