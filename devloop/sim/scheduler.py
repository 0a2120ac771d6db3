"""The scheduler of the embedded cluster: binds each new pod to the cluster's one node, or
says why it cannot (FailedScheduling, with the scheduler's own words) and tries again with
its back-off. The node (devloop.node, the same one Kubernetes' own control plane runs with)
then sees the pod bound to it through the API, as a kubelet does.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import Any

from devloop.sim import resources
from devloop.sim.admission import quantity
from devloop.sim.api import Api
from devloop.sim.errors import ApiError
from devloop.sim.settings import SimSettings
from devloop.sim.store import Store, WatchEvent, now_rfc3339

PODS = resources.of_kind("v1", "Pod")
NODES = resources.of_kind("v1", "Node")
NODE_NAME = "pdwatch-embedded"
MANAGER = "kube-scheduler"
# the scheduler's back-off for an unschedulable pod (podInitialBackoffSeconds 1 s,
# podMaxBackoffSeconds 10 s: pkg/scheduler/apis/config/v1 defaults)
SCHEDULE_BACKOFF = 1.0
SCHEDULE_BACKOFF_MAX = 10.0


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """k8s.io/api/core/v1 toleration.go ToleratesTaint."""
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def requests(pod: dict[str, Any], name: str) -> Decimal:
    """A pod's request of a resource: the sum over its containers (resource_helpers)."""
    return sum(
        (
            quantity(((c.get("resources") or {}).get("requests") or {}).get(name, "0"))
            for c in (pod.get("spec") or {}).get("containers") or []
        ),
        Decimal(0),
    )


def unschedulable(store: Store, pod: dict[str, Any]) -> str | None:
    """Why the scheduler cannot place the pod on the cluster's one node, as its FitError
    says it (pkg/scheduler/framework/types.go FitError.Error: `0/N nodes are available: …`,
    then the preemption's own verdict), or None. Filters: NodeUnschedulable,
    TaintToleration (NoSchedule/NoExecute taints, helpers.TolerationsTolerateTaint),
    NodeResourcesFit (requests of the pods bound to the node against allocatable)."""
    node = store.find(NODES, "", NODE_NAME)
    if node is None:
        return "no nodes available to schedule pods"  # schedule_one.go ErrNoNodesAvailable
    spec, tolerations = node.get("spec") or {}, (pod.get("spec") or {}).get("tolerations")
    reasons: list[str] = []
    helpful = False
    if spec.get("unschedulable") and not tolerates(
        tolerations or [],
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ):
        reasons.append("node(s) were unschedulable")
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
            tolerations or [], taint
        ):
            # taint_toleration.go (v1.37.2): the taint is no longer named (it was until
            # 1.35: "had untolerated taint {key: value}")
            reasons.append("node(s) had untolerated taint(s)")
            break
    if not reasons:
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        bound = store.view(
            PODS,
            "",
            lambda p: (
                (p.get("spec") or {}).get("nodeName") == NODE_NAME
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                and p["metadata"]["uid"] != pod["metadata"]["uid"]
            ),
        )
        for name in ("cpu", "memory"):
            if name not in allocatable:
                continue
            used = sum(requests(p, name) for p in bound) + requests(pod, name)
            if used > quantity(allocatable[name]):
                reasons.append(f"Insufficient {name}")
                helpful = True
    if not reasons:
        return None
    preemption = (
        "No preemption victims found for incoming pod"
        if helpful
        else "Preemption is not helpful for scheduling"
    )
    listed = ", ".join(f"1 {r}" for r in sorted(reasons))
    return (
        f"0/1 nodes are available: {listed}. preemption: 0/1 nodes are available: 1 {preemption}."
    )


class Scheduler:
    """One task per pod waiting to be bound; it ends when the pod is bound or gone."""

    def __init__(self, api: Api, store: Store, settings: SimSettings) -> None:
        self.api, self.store, self.settings = api, store, settings
        self.waiting: dict[str, asyncio.Task[None]] = {}
        store.listeners.append(self.on_event)

    def on_event(self, event: WatchEvent) -> None:
        if event.resource is not PODS or event.type != "ADDED":
            return
        meta = event.object["metadata"]
        if (event.object.get("spec") or {}).get("nodeName"):
            return
        uid = meta["uid"]
        task = asyncio.get_running_loop().create_task(
            self.schedule(meta["namespace"], meta["name"], uid)
        )
        self.waiting[uid] = task
        task.add_done_callback(lambda _: self.waiting.pop(uid, None))

    async def stop(self) -> None:
        tasks = list(self.waiting.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _pod(self, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
        pod = self.store.find(PODS, namespace, name)
        if pod is None or pod["metadata"]["uid"] != uid or pod["metadata"].get("deletionTimestamp"):
            return None
        return pod

    async def schedule(self, namespace: str, name: str, uid: str) -> None:
        s = self.settings
        await asyncio.sleep(s.schedule_delay)
        backoff = SCHEDULE_BACKOFF
        with contextlib.suppress(ApiError):  # the pod went away under us
            while True:
                pod = self._pod(namespace, name, uid)
                if pod is None:
                    return
                why = unschedulable(self.store, pod)
                if why is None:
                    return self._bind(pod)
                status = pod.get("status") or {}
                pod["status"] = {
                    "phase": "Pending",
                    "qosClass": status.get("qosClass", "BestEffort"),
                    "conditions": [
                        {
                            "type": "PodScheduled",
                            "status": "False",
                            "reason": "Unschedulable",
                            "message": why,
                            "lastTransitionTime": now_rfc3339(),
                        }
                    ],
                }
                self.api.update(PODS, namespace, name, pod, MANAGER, "status")
                self.api.record_event(
                    pod, "FailedScheduling", why, "Warning", component="default-scheduler"
                )
                await asyncio.sleep(s.scaled(backoff))
                backoff = min(backoff * 2, SCHEDULE_BACKOFF_MAX)

    def _bind(self, pod: dict[str, Any]) -> None:
        """What pods/binding does (registry/core/pod/storage assignPod): spec.nodeName set
        and the PodScheduled condition True, in one write."""
        meta = pod["metadata"]
        pod["spec"]["nodeName"] = NODE_NAME
        status = pod.setdefault("status", {})
        status["conditions"] = [
            c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"
        ] + [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}]
        bound = self.api.update(PODS, meta["namespace"], meta["name"], pod, MANAGER)
        bound["status"] = status
        self.api.update(PODS, meta["namespace"], meta["name"], bound, MANAGER, "status")
        self.api.record_event(
            bound,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {NODE_NAME}",
            component="default-scheduler",
        )
