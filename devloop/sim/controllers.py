"""The deployment and replica-set controllers, as kube-controller-manager runs them.

One ReplicaSet per pod template (`<deployment>-<pod-template-hash>`, revision annotation),
a rolling update bounded by maxSurge/maxUnavailable (for the usual replicas=1,
maxSurge=1, maxUnavailable=0: new pod first, old pod removed once the new one is
available), status and conditions, history cleanup, and the events real controllers
record (ScalingReplicaSet, SuccessfulCreate, SuccessfulDelete, FailedCreate).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any

from devloop.sim import admission, resources
from devloop.sim.api import Api
from devloop.sim.clone import clone
from devloop.sim.errors import ApiError
from devloop.sim.store import Store, WatchEvent, now_rfc3339

DEPLOYMENTS = resources.of_kind("apps/v1", "Deployment")
REPLICASETS = resources.of_kind("apps/v1", "ReplicaSet")
PODS = resources.of_kind("v1", "Pod")
NAMESPACES = resources.of_kind("v1", "Namespace")
SERVICE_ACCOUNTS = resources.of_kind("v1", "ServiceAccount")
QUOTAS = resources.of_kind("v1", "ResourceQuota")
MANAGER = "kube-controller-manager"
# deployment/util DeploymentProgressing: more of these, or fewer old replicas, is progress
PROGRESS_COUNTS = ("updatedReplicas", "readyReplicas", "availableReplicas")
REVISION = "deployment.kubernetes.io/revision"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    """FNV-32a of the template, encoded like k8s rand.SafeEncodeString (no vowels)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in str(h))


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return any(r.get("uid") == owner["metadata"]["uid"] and r.get("controller") for r in refs)


def pod_for(owner: dict[str, Any]) -> dict[str, Any]:
    """A pod from the template of its controller (a ReplicaSet or a Job)."""
    template = clone(owner["spec"]["template"])
    meta = template.get("metadata") or {}
    meta.pop("creationTimestamp", None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **meta,
            "generateName": f"{owner['metadata']['name']}-",
            "namespace": owner["metadata"]["namespace"],
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": template.get("spec") or {},
    }


def owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def resolve(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def without_hash(template: dict[str, Any]) -> dict[str, Any]:
    out = clone(template)
    (out.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
    return out


class Controllers:
    def __init__(
        self,
        api: Api,
        store: Store,
        retry_s: float = 1.0,
        time_scale: float = 1.0,
        service_account_delay: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.api, self.store = api, store
        self.retry_s = retry_s
        # replicaset-controller's rate-limited queue: a ReplicaSet whose pods cannot be
        # created is tried again after 5 ms, doubling each time up to 1,000 s (workqueue's
        # ItemExponentialFailureRateLimiter), not on every change of its own status
        self.create_failures: dict[tuple[str, str], int] = {}
        self.create_not_before: dict[tuple[str, str], float] = {}
        self.service_account_delay = service_account_delay  # read when a namespace appears
        self.time_scale = time_scale  # progressDeadlineSeconds is a real period
        # when each Deployment last made progress (monotonic), for its deadline
        self.last_progress: dict[tuple[str, str], float] = {}
        self.queue: asyncio.Queue[tuple[str, str, str]] = asyncio.Queue()
        self.pending: set[tuple[str, str, str]] = set()
        self.task: asyncio.Task[None] | None = None
        store.listeners.append(self.on_event)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()

    def enqueue(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key not in self.pending:
            self.pending.add(key)
            self.queue.put_nowait(key)

    def on_event(self, event: WatchEvent) -> None:
        obj, kind = event.object, event.resource.kind
        ns = obj["metadata"].get("namespace", "")
        if kind == "Namespace" and event.type == "ADDED":
            self.later(self.service_account_delay(), "ServiceAccount", obj["metadata"]["name"])
        elif kind == "ServiceAccount" and event.type == "DELETED":
            self.later(self.service_account_delay(), "ServiceAccount", ns)
        if kind in ("Pod", "ResourceQuota") and self.store.view(QUOTAS, ns):
            self.enqueue("ResourceQuota", ns, "")
        if kind == "Deployment":
            self.enqueue("Deployment", ns, obj["metadata"]["name"])
        elif kind in ("ReplicaSet", "Pod"):
            if kind == "ReplicaSet":
                self.enqueue("ReplicaSet", ns, obj["metadata"]["name"])
            for ref in obj["metadata"].get("ownerReferences") or []:
                if ref.get("controller"):
                    self.enqueue(ref["kind"], ns, ref["name"])
                    if kind == "Pod" and event.type == "DELETED" and ref["kind"] == "ReplicaSet":
                        # deployment_controller.go deletePod: a Recreate rollout waits for
                        # its old pods to be gone, so their deletion wakes the Deployment
                        self.enqueue_owner_of_replicaset(ns, ref["name"])

    def later(self, delay: float, kind: str, namespace: str, name: str = "") -> None:
        if delay <= 0:
            self.enqueue(kind, namespace, name)
        else:
            asyncio.get_running_loop().call_later(delay, self.enqueue, kind, namespace, name)

    def enqueue_owner_of_replicaset(self, ns: str, name: str) -> None:
        rs = self.store.find(REPLICASETS, ns, name)
        for ref in (rs or {}).get("metadata", {}).get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "Deployment":
                self.enqueue("Deployment", ns, ref["name"])

    async def run(self) -> None:
        while True:
            key = await self.queue.get()
            self.pending.discard(key)
            kind, ns, name = key
            try:
                if kind == "Deployment":
                    self.sync_deployment(ns, name)
                elif kind == "ReplicaSet":
                    self.sync_replicaset(ns, name)
                elif kind == "ServiceAccount":
                    self.sync_service_account(ns)
                elif kind == "ResourceQuota":
                    self.sync_quotas(ns)
            except ApiError:
                loop = asyncio.get_running_loop()
                loop.call_later(self.retry_s, self.enqueue, kind, ns, name)
            await asyncio.sleep(0)

    # --- deployments -------------------------------------------------------------------------

    def sync_deployment(self, ns: str, name: str) -> None:
        """pkg/controller/deployment/deployment_controller.go syncDeployment: a paused
        Deployment is not rolled out (sync.go); Recreate (recreate.go) or RollingUpdate
        (rolling.go); then the revision annotation and the status with its conditions,
        progressDeadlineSeconds included (progress.go)."""
        d = self.store.find(DEPLOYMENTS, ns, name)
        if d is None or d["metadata"].get("deletionTimestamp"):
            self.last_progress.pop((ns, name), None)
            return
        spec = d["spec"]
        rses = self.store.view(REPLICASETS, ns, lambda rs: owned_by(rs, d))
        template_hash_value = template_hash(spec["template"])
        new = next(
            (rs for rs in rses if without_hash(rs["spec"]["template"]) == spec["template"]), None
        )
        old = [rs for rs in rses if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
        if spec.get("paused"):
            self.paused_status(d)
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            new = self.recreate(d, new, old, template_hash_value, rses)
            if new is not None:
                self.set_revision(d, new)
                self.cleanup_history(d, new)
                self.update_status(ns, name, new["metadata"]["name"])
            return
        replicas = spec.get("replicas", 1)
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve(rolling.get("maxSurge", "25%"), replicas, True)
        unavailable = resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        revisions = [int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in rses]
        if new is None:
            total = sum(rs["spec"].get("replicas", 0) for rs in old)
            start = max(0, min(replicas, replicas + surge - total))
            new = self.create_replicaset(
                d, template_hash_value, max(revisions, default=0) + 1, start
            )
            if new is None:
                return
            self.progress(
                d, "NewReplicaSetCreated", f'Created new replica set "{new["metadata"]["name"]}"'
            )
        elif int(new["metadata"].get("annotations", {}).get(REVISION, "0")) < max(revisions):
            new = clone(new)  # the store's own (Store.view)
            new["metadata"]["annotations"][REVISION] = str(max(revisions) + 1)
            new = self.api.update(REPLICASETS, ns, new["metadata"]["name"], new, MANAGER)
        # scale up the new ReplicaSet within maxSurge
        all_count = sum(rs["spec"].get("replicas", 0) for rs in [*old, new])
        current = new["spec"].get("replicas", 0)
        if current < replicas:
            step = min(replicas + surge - all_count, replicas - current)
            if step > 0:
                new = self.scale(d, new, current + step)
        elif current > replicas:
            new = self.scale(d, new, replicas)
        # scale down old ReplicaSets within maxUnavailable, as rolling.go does: first the
        # unhealthy old replicas within the budget, then by the number of available pods
        min_available = replicas - unavailable
        new_status = new.get("status") or {}
        new_unavailable = new["spec"]["replicas"] - new_status.get("availableReplicas", 0)
        all_count = sum(rs["spec"].get("replicas", 0) for rs in [*old, new])
        budget = all_count - min_available - new_unavailable
        if budget > 0:
            old.sort(key=lambda r: r["metadata"]["creationTimestamp"])
            for i, rs in enumerate(old):
                have = rs["spec"].get("replicas", 0)
                unhealthy = have - (rs.get("status") or {}).get("availableReplicas", 0)
                cut = min(unhealthy, budget)
                if cut > 0:
                    old[i] = self.scale(d, rs, have - cut)
                    budget -= cut
            available = sum(
                (rs.get("status") or {}).get("availableReplicas", 0) for rs in [*old, new]
            )
            allowance = available - min_available
            for rs in old:
                have = rs["spec"].get("replicas", 0)
                cut = min(have, allowance)
                if cut > 0:
                    self.scale(d, rs, have - cut)
                    allowance -= cut
        self.set_revision(d, new)
        self.cleanup_history(d, new)
        self.update_status(ns, name, new["metadata"]["name"])

    def recreate(
        self,
        d: dict[str, Any],
        new: dict[str, Any] | None,
        old: list[dict[str, Any]],
        hash_value: str,
        rses: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        """recreate.go rolloutRecreate: every old ReplicaSet to zero, wait until none of
        their pods runs any more, then the new ReplicaSet up to the replicas."""
        ns = d["metadata"]["namespace"]
        for rs in old:
            if rs["spec"].get("replicas", 0) > 0:
                self.scale(d, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        running = [
            p
            for p in self.store.view(PODS, ns)
            if any(r.get("uid") in old_uids for r in p["metadata"].get("ownerReferences") or [])
            and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
        ]
        if new is None:
            revisions = [
                int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in rses
            ]
            new = self.create_replicaset(d, hash_value, max(revisions, default=0) + 1, 0)
            if new is None:
                return None
            self.progress(
                d, "NewReplicaSetCreated", f'Created new replica set "{new["metadata"]["name"]}"'
            )
        if running:
            return new  # the old pods go first
        replicas = d["spec"].get("replicas", 1)
        if new["spec"].get("replicas", 0) != replicas:
            new = self.scale(d, new, replicas)
        return new

    def set_revision(self, d: dict[str, Any], new: dict[str, Any]) -> None:
        """The Deployment carries its new ReplicaSet's revision (sync.go
        setDeploymentRevision); `kubectl rollout history/undo` read it."""
        revision = (new["metadata"].get("annotations") or {}).get(REVISION)
        current = self.store.get(DEPLOYMENTS, d["metadata"]["namespace"], d["metadata"]["name"])
        annotations = current["metadata"].setdefault("annotations", {})
        if revision and annotations.get(REVISION) != revision:
            annotations[REVISION] = revision
            self.api.update(
                DEPLOYMENTS, d["metadata"]["namespace"], d["metadata"]["name"], current, MANAGER
            )

    def paused_status(self, d: dict[str, Any]) -> None:
        """sync.go: a paused Deployment reports Progressing Unknown, DeploymentPaused."""
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        current = self.store.get(DEPLOYMENTS, ns, name)
        current.setdefault("status", {})["observedGeneration"] = current["metadata"].get(
            "generation", 1
        )
        set_condition(current, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        self.api.update(DEPLOYMENTS, ns, name, current, MANAGER, "status")
        self.last_progress.pop((ns, name), None)

    def create_replicaset(
        self, d: dict[str, Any], hash_value: str, revision: int, replicas: int
    ) -> dict[str, Any] | None:
        template = clone(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = (
            hash_value
        )
        selector = clone(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = hash_value
        name = f"{d['metadata']['name']}-{hash_value}"
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    REVISION: str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(d["spec"]["replicas"]),
                    "deployment.kubernetes.io/max-replicas": str(d["spec"]["replicas"] + 1),
                },
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }
        created = self.api.create(REPLICASETS, d["metadata"]["namespace"], rs, MANAGER)
        if replicas:
            self.api.record_event(
                d,
                "ScalingReplicaSet",
                f"Scaled up replica set {name} from 0 to {replicas}",
                component="deployment-controller",
            )
        return created

    def scale(self, d: dict[str, Any], rs: dict[str, Any], to: int) -> dict[str, Any]:
        rs = clone(rs)  # it may be the store's own (Store.view)
        before = rs["spec"].get("replicas", 0)
        rs["spec"]["replicas"] = to
        updated = self.api.update(
            REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], rs, MANAGER
        )
        verb = "up" if to > before else "down"
        self.api.record_event(
            d,
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} from {before} to {to}",
            component="deployment-controller",
        )
        return updated

    def cleanup_history(self, d: dict[str, Any], new: dict[str, Any]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [
            rs
            for rs in self.store.view(
                REPLICASETS, d["metadata"]["namespace"], lambda rs: owned_by(rs, d)
            )
            if rs["metadata"]["uid"] != new["metadata"]["uid"]
            and rs["spec"].get("replicas", 0) == 0
            and (rs.get("status") or {}).get("replicas", 0) == 0
        ]
        idle.sort(key=lambda rs: int(rs["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[: max(0, len(idle) - limit)]:
            self.api.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"])

    def progress(self, d: dict[str, Any], reason: str, message: str) -> None:
        current = self.store.get(DEPLOYMENTS, d["metadata"]["namespace"], d["metadata"]["name"])
        set_condition(current, "Progressing", "True", reason, message)
        self.api.update(
            DEPLOYMENTS,
            d["metadata"]["namespace"],
            d["metadata"]["name"],
            current,
            MANAGER,
            "status",
        )

    def update_status(self, ns: str, name: str, new_name: str) -> None:
        d = self.store.get(DEPLOYMENTS, ns, name)
        rses = self.store.view(REPLICASETS, ns, lambda rs: owned_by(rs, d))
        new = next(rs for rs in rses if rs["metadata"]["name"] == new_name)
        replicas = d["spec"].get("replicas", 1)

        def total(key: str) -> int:
            return sum((rs.get("status") or {}).get(key, 0) for rs in rses)

        status = d.setdefault("status", {})
        before = dict(status)
        status["observedGeneration"] = d["metadata"].get("generation", 1)
        status["replicas"] = total("replicas")
        status["updatedReplicas"] = (new.get("status") or {}).get("replicas", 0)
        status["readyReplicas"] = total("readyReplicas")
        status["availableReplicas"] = total("availableReplicas")
        status["unavailableReplicas"] = max(0, status["replicas"] - status["availableReplicas"])
        for key in (
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "updatedReplicas",
            "replicas",
        ):
            if status[key] == 0:
                status.pop(key)
        rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        min_available = replicas - resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
        if status.get("availableReplicas", 0) >= min_available:
            set_condition(
                d,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            set_condition(
                d,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        new_status = new.get("status") or {}
        failure = next(
            (c for c in new_status.get("conditions") or [] if c.get("type") == "ReplicaFailure"),
            None,
        )
        if failure:
            set_condition(d, "ReplicaFailure", "True", failure["reason"], failure["message"])
        else:
            remove_condition(d, "ReplicaFailure")
        complete = (
            status.get("updatedReplicas", 0) == replicas
            and status.get("availableReplicas", 0) >= replicas
            and status.get("replicas", 0) == replicas
        )
        if complete:
            self.last_progress.pop((ns, name), None)
            set_condition(
                d,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
            )
        else:
            progress_key = (ns, name)
            now = asyncio.get_running_loop().time()
            moved = any(status.get(k, 0) > before.get(k, 0) for k in PROGRESS_COUNTS) or (
                before.get("replicas", 0) > status.get("replicas", 0)
            )
            if moved or progress_key not in self.last_progress:
                self.last_progress[progress_key] = now
            current = next(
                (c for c in status.get("conditions") or [] if c["type"] == "Progressing"), None
            )
            deadline = d["spec"].get("progressDeadlineSeconds", 600) * self.time_scale
            if now - self.last_progress[progress_key] >= deadline:
                set_condition(
                    d,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    f'ReplicaSet "{new_name}" has timed out progressing.',
                )
            elif current is None or current.get("reason") != "NewReplicaSetCreated" or moved:
                set_condition(
                    d,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{new_name}" is progressing.',
                )
                # progress.go requeueStuckDeployment: look again when the deadline passes
                remaining = deadline - (now - self.last_progress[progress_key]) + 0.01
                asyncio.get_running_loop().call_later(
                    remaining, self.enqueue, "Deployment", ns, name
                )
        self.api.update(DEPLOYMENTS, ns, name, d, MANAGER, "status")

    # --- replica sets -----------------------------------------------------------------------

    def sync_replicaset(self, ns: str, name: str) -> None:
        found = self.store.find(REPLICASETS, ns, name)
        if found is None:
            return
        rs = found
        pods = self.store.view(PODS, ns, lambda p: owned_by(p, rs))
        active = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        want = rs["spec"].get("replicas", 0)
        failure: str | None = None
        loop = asyncio.get_running_loop()
        rs_key = (ns, name)
        waiting = loop.time() < self.create_not_before.get(rs_key, 0.0)
        for _ in range(0 if waiting else want - len(active)):
            try:
                pod = self.api.create(PODS, ns, pod_for(rs), MANAGER)
            except ApiError as err:
                failure = f"Error creating: {err.message}"
                self.api.record_event(
                    rs, "FailedCreate", failure, "Warning", component="replicaset-controller"
                )
                failures = self.create_failures.get(rs_key, 0)
                self.create_failures[rs_key] = failures + 1
                delay = min(0.005 * 2**failures, 1000.0)
                self.create_not_before[rs_key] = loop.time() + delay
                loop.call_later(delay, self.enqueue, "ReplicaSet", ns, name)
                break
            self.create_failures.pop(rs_key, None)
            self.create_not_before.pop(rs_key, None)
            active.append(pod)
            self.api.record_event(
                rs,
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                component="replicaset-controller",
            )
        if len(active) > want:
            doomed = sorted(active, key=lambda p: (is_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in doomed[: len(active) - want]:
                self.api.delete(PODS, ns, pod["metadata"]["name"])
                active.remove(pod)
                self.api.record_event(
                    rs,
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    component="replicaset-controller",
                )
        rs = self.store.get(REPLICASETS, ns, name)
        ready = sum(1 for p in active if is_ready(p))
        status: dict[str, Any] = {
            "replicas": len(active),
            "fullyLabeledReplicas": len(active),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if status[key] == 0:
                status.pop(key)
        conditions = [
            c
            for c in (rs.get("status") or {}).get("conditions") or []
            if c.get("type") != "ReplicaFailure"
        ]
        previous = next(
            (
                c
                for c in (rs.get("status") or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"
            ),
            None,
        )
        if waiting and previous is not None:
            conditions.append(previous)  # still failing: the condition as it was
        elif failure:
            conditions.append(
                {
                    "type": "ReplicaFailure",
                    "status": "True",
                    "reason": "FailedCreate",
                    "message": failure,
                    "lastTransitionTime": now_rfc3339(),
                }
            )
        if conditions:
            status["conditions"] = conditions
        if status == rs.get("status"):
            return  # nothing changed: no write (each write would sync it again)
        rs["status"] = status
        self.api.update(REPLICASETS, ns, name, rs, MANAGER, "status")

    def sync_service_account(self, ns: str) -> None:
        """pkg/controller/serviceaccount/serviceaccounts_controller.go syncNamespace: every
        active namespace has a `default` ServiceAccount (created again when deleted)."""
        namespace = self.store.find(NAMESPACES, "", ns)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return
        if self.store.find(SERVICE_ACCOUNTS, ns, "default") is None:
            self.api.create(
                SERVICE_ACCOUNTS, ns, {"metadata": {"name": "default"}}, "kube-controller-manager"
            )

    def sync_quotas(self, ns: str) -> None:
        """pkg/controller/resourcequota/resource_quota_controller.go syncResourceQuota:
        status.hard mirrors spec.hard, status.used what the namespace's pods use."""
        pods = self.store.view(PODS, ns)
        for quota in self.store.view(QUOTAS, ns):
            status = admission.quota_status(quota, pods)
            if quota.get("status") != status:
                updated = clone(quota)
                updated["status"] = status
                self.api.update(QUOTAS, ns, quota["metadata"]["name"], updated, MANAGER, "status")


def set_condition(obj: dict[str, Any], type_: str, status: str, reason: str, message: str) -> None:
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    now = now_rfc3339()
    for c in conditions:
        if c["type"] == type_:
            if c.get("status") != status:
                c["lastTransitionTime"] = now
            if (c.get("reason"), c.get("message")) != (reason, message):
                c["lastUpdateTime"] = now
            c.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": type_,
            "status": status,
            "lastUpdateTime": now,
            "lastTransitionTime": now,
            "reason": reason,
            "message": message,
        }
    )


def remove_condition(obj: dict[str, Any], type_: str) -> None:
    status = obj.setdefault("status", {})
    status["conditions"] = [c for c in status.get("conditions") or [] if c["type"] != type_]
