"""One deploy cycle: apply what differs, roll out exactly once, follow the new pod.

1. Read the ConfigMap, Deployment, Secret, Service and CronJobs in one parallel round;
   the rollout waits only for the first three.
2. Server-side apply (forced: pdwatch owns these objects) what differs from the bundle
   (plan.plan_objects): the Secret and the ConfigMap, which the new pods mount, first.
3. The Deployment, whose pod template records the code's content hash and the Secret's
   resourceVersion (plan.wanted_deployment): when it differs, it is applied, and a changed
   template is the one rollout. Only a restart asked for with nothing to apply uses a
   `kubectl.kubernetes.io/restartedAt` stamp, unique per call. Then the Service and the
   CronJobs; CronJobs and a Secret the workflow no longer renders are deleted, when they
   carry its labels.
4. Follow the rollout to the new pod's Ready, or its failure. With nothing applied, the
   rollout the Deployment is in is followed if it is not complete, and the serving pod is
   found when it is. So a cycle cut short anywhere is finished by the next one, and
   "unchanged" means the cluster runs this (plan.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devloop import events
from devloop.kube import informers, plan
from devloop.kube.client import FIELD_MANAGER, Kube
from devloop.kube.errors import Forbidden, KubeError, NotOurs, Timeout
from devloop.kube.progress import RolloutResult, paused_failure
from devloop.kube.rollout import RolloutWatch, follow_rollout, serving_pod
from devloop.manifests import (
    mounted_config_maps,
    owned_by_workflow,
    snapshot_labels,
)
from devloop.render import Bundle
from devloop.waits import finish, within

Emit = Callable[[events.Event], None]
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_TIMEOUT_S = 30.0


class RestartStamps:
    """`restartedAt` values that differ on every call, even within the same microsecond
    (the reference CLI's one-second stamps lost the second of two quick deploys)."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def next(self, now: datetime | None = None) -> str:
        moment = now or datetime.now(UTC)
        if self.last is not None and moment <= self.last:
            moment = self.last + timedelta(microseconds=1)
        self.last = moment
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class CycleResult:
    applied: bool
    restarted: bool
    rollout: RolloutResult | None = None
    serving: str = ""  # the pod that serves this, when no rollout was followed
    deployment: dict[str, Any] | None = None  # the Deployment as the cycle left it

    @property
    def ok(self) -> bool:
        return self.rollout is None or self.rollout.ok


async def rollout_restart(
    kube: Kube, deployment: str, stamp: str, timeout: float = RESTART_TIMEOUT_S
) -> dict[str, Any]:
    """Patch the pod-template annotation as `kubectl rollout restart` does. Retries while
    the cluster is unreachable; after `timeout` seconds: a deadline error (seed 000)."""
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    deadline = time.monotonic() + timeout
    delay = 0.1
    last: KubeError | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(
                f"rollout restart of deployment {deployment}: context deadline "
                f"exceeded after {timeout:g}s" + (f" ({last})" if last else "")
            )
        try:
            return await within(
                kube.patch("Deployment", deployment, body, timeout=remaining), remaining
            )
        except TimeoutError:
            continue
        except KubeError as exc:
            if not exc.retryable:
                raise
            last = exc
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


PRUNE_BOUND_S = 1.0


def refuse_foreign(objects: list[dict[str, Any] | None], bundle: Bundle) -> None:
    """pdwatch writes only objects it made (its labels, or its field manager): a
    same-named object of someone else's (a Helm release, a hand-made Service) stops the
    deploy before pdwatch writes anything over it."""
    others = plan.foreign(objects, bundle.workflow.name, FIELD_MANAGER)
    if others:
        raise NotOurs(
            f"not pdwatch's: {'; '.join(others)}. pdwatch does not take over objects it did "
            "not create; rename the workflow (name: in workflow.yaml) or deploy to another "
            "namespace (-n)"
        )


async def read_mounted(kube: Kube, bundle: Bundle) -> plan.Live:
    """The rollout's inputs: the code ConfigMap, the immutable copy the pods mount, the
    Secret, the import map when the bundle has one, and the Deployment."""
    shared = informers.of(kube)
    secret_name = f"{bundle.workflow.name}-secrets"
    import_map = bundle.import_map["metadata"]["name"] if bundle.import_map else None
    cm, snapshot, deployment, secret, mapped = await asyncio.gather(
        shared.get("ConfigMap", bundle.config_map["metadata"]["name"]),
        shared.get("ConfigMap", bundle.code_snapshot["metadata"]["name"]),
        shared.get("Deployment", bundle.deployment["metadata"]["name"]),
        shared.get("Secret", secret_name)
        if bundle.secret is not None
        else shared.ours("Secret", secret_name),  # only to prune it
        shared.get("ConfigMap", import_map) if import_map else _nothing(),
    )
    return plan.Live.of(cm, snapshot, deployment, secret, mapped)


async def _nothing() -> None:
    return None


async def _if_allowed(kube: Kube, kind: str, name: str) -> dict[str, Any] | None:
    """An object read only to prune it: pdwatch's own, if its watch holds it; where pdwatch
    may not read that kind (a Role without NetworkPolicies, say), it has none of its own
    there to prune."""
    try:
        return await informers.of(kube).ours(kind, name)
    except Forbidden:
        return None


async def _crons(kube: Kube, workflow: str) -> list[dict[str, Any]]:
    """The workflow's CronJobs, in either format (ownership_selector)."""
    listed = await informers.of(kube).items("CronJob", {"app.kubernetes.io/name": workflow})
    return [cron for cron in listed if owned_by_workflow(cron, workflow)]


async def read_around(kube: Kube, bundle: Bundle) -> plan.Live:
    """What the rollout does not depend on: the Service, the workflow's CronJobs, its
    NetworkPolicy, and an import map it no longer has (to prune)."""
    name = bundle.workflow.name
    shared = informers.of(kube)
    service, crons, policy, stale_map = await asyncio.gather(
        shared.get("Service", bundle.service["metadata"]["name"]),
        _crons(kube, name),
        shared.get("NetworkPolicy", f"{name}-netpol")
        if bundle.network_policy
        else _if_allowed(kube, "NetworkPolicy", f"{name}-netpol"),
        _if_allowed(kube, "ConfigMap", f"{name}-import-map")
        if not bundle.import_map
        else _nothing(),
    )
    return plan.Live.of(service, *crons, policy, stale_map)


async def deploy_cycle(
    kube: Kube,
    bundle: Bundle,
    emit: Emit,
    stamps: RestartStamps,
    force_restart: bool = False,
    rollout_timeout: float = 120,
    restart_timeout: float = RESTART_TIMEOUT_S,
    on_pod_started: Callable[[str], None] | None = None,
    edited_at: float | None = None,
) -> CycleResult:
    # The rollout waits only for what its pods mount; the Service and CronJobs are read
    # once the Deployment's apply has gone out (at the API server, their requests would
    # queue in front of it) and applied after it: they do not shape the pods.
    live = await read_mounted(kube, bundle)
    refuse_foreign(list(live.objects), bundle)
    live_deployment = live.get("Deployment", bundle.deployment["metadata"]["name"])
    around: asyncio.Task[plan.Live] | None = None
    mounted = [
        m for m in (bundle.secret, bundle.config_map, bundle.code_snapshot, bundle.import_map) if m
    ]
    first = plan.plan_objects(live.without("Deployment"), mounted, bundle.workflow.name)
    t0 = time.monotonic()
    applied: list[str] = []
    pruned: list[str] = []
    # the pod template records the Secret's version: the live one, or the one applied now
    secret = live.get("Secret", bundle.secret["metadata"]["name"]) if bundle.secret else None
    for manifest in first.apply:
        result = await kube.apply(manifest)
        applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        if manifest["kind"] == "Secret":
            secret = result
    for kind, object_name in first.prune:  # a Secret the workflow no longer has
        if await kube.delete(kind, object_name):
            pruned.append(f"{kind}/{object_name}")
    wanted = plan.wanted_deployment(bundle.deployment, plan.secret_version(secret), bundle.source)
    other = plan.deployed_from(live_deployment)
    if other and bundle.source and other != bundle.source:
        emit(
            events.Warning(
                f"deployment {bundle.workflow.name} in namespace {kube.namespace} was deployed "
                f"from {other}, not from this directory: two folders (or sessions) deploy "
                "this workflow name; this deploy replaces that one"
            )
        )
    step = plan.plan_deployment(live_deployment, wanted, force_restart)
    name = wanted["metadata"]["name"]
    deployment = live_deployment
    watch: RolloutWatch | None = None
    rolled = False
    restart_at = time.monotonic()
    try:
        if step.apply:
            # The apply goes out first; the watches open while it is served, so the new
            # pod is seen as it appears (not looked up afterwards), and their lists do not
            # queue in front of the apply at the API server.
            restart_at = time.monotonic()
            applying = asyncio.create_task(kube.apply(wanted))
            await asyncio.sleep(0)
            watch = open_rollout_watch(kube, bundle)
            around = asyncio.create_task(read_around(kube, bundle))
            deployment = await applying
            applied.append(f"Deployment/{name}")
            rolled = plan.templates_differ(live_deployment, deployment)
        outside = await (around or read_around(kube, bundle))
        refuse_foreign(list(outside.objects), bundle)
        policy = [bundle.network_policy] if bundle.network_policy else []
        rest = plan.plan_objects(
            outside, [bundle.service, *policy, *bundle.cronjobs], bundle.workflow.name
        )
        for manifest in rest.apply:
            await kube.apply(manifest)
            applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        for kind, object_name in rest.prune:
            if await kube.delete(kind, object_name):
                pruned.append(f"{kind}/{object_name}")
        if applied or pruned:
            emit(events.Applied(tuple(applied), (time.monotonic() - t0) * 1000, tuple(pruned)))
        if rolled:
            emit(events.RestartTriggered(name, "template"))
        elif step.restart or force_restart:  # asked for, and the apply rolled nothing
            stamp = stamps.next()
            watch = watch or open_rollout_watch(kube, bundle)
            restart_at = time.monotonic()
            deployment = await rollout_restart(kube, name, stamp, restart_timeout)
            emit(events.RestartTriggered(name, "restartedAt", stamp))
            rolled = True
        assert deployment is not None  # applied, or read live
        if not rolled:
            return await settle(
                kube,
                deployment,
                emit,
                bool(applied or pruned),
                rollout_timeout,
                on_pod_started,
                bundle.content_hash,
            )
        assert watch is not None
        rollout = await follow_rollout(
            kube, deployment, emit, rollout_timeout, restart_at, on_pod_started, edited_at, watch
        )
    finally:
        if watch is not None:
            await watch.close()
        if around is not None and not around.done():
            await finish(around, 1.0)
    if rollout.ok:
        # Bounded: a slow API server must not hold the next save's cycle; what is left is
        # pruned by the next rolled-out cycle.
        with contextlib.suppress(KubeError, TimeoutError):
            await within(
                prune_snapshots(
                    kube, bundle.workflow.name, bundle.code_snapshot["metadata"]["name"]
                ),
                PRUNE_BOUND_S,
            )
    return CycleResult(applied=True, restarted=True, rollout=rollout, deployment=deployment)


async def prune_snapshots(kube: Kube, workflow: str, keep: str = "") -> list[str]:
    """Delete the immutable code copies that neither the Deployment nor any of its kept
    ReplicaSets mounts (the Deployment keeps revisionHistoryLimit of them, so `kubectl
    rollout undo` finds its code); never one a ReplicaSet still names, never `keep`, and
    nothing while the Deployment is missing (a cycle is about to create it again). Runs
    inside a deploy cycle, after its rollout: cycles are single flight, so no other cycle
    is between writing a copy and the Deployment that mounts it."""
    shared = informers.of(kube)
    snapshots, replica_sets, deployment = await asyncio.gather(
        shared.items("ConfigMap", snapshot_labels(workflow)),
        shared.items("ReplicaSet", {"app.kubernetes.io/name": workflow}),
        shared.get("Deployment", workflow),
    )
    if deployment is None:
        return []
    used: set[str] = {keep}
    for owner in [*replica_sets, deployment]:
        if owner is not None:
            used |= mounted_config_maps((owner.get("spec") or {}).get("template") or {})
    deleted = []
    for snapshot in snapshots:
        name = snapshot["metadata"]["name"]
        unused = name not in used and owned_by_workflow(snapshot, workflow)
        if unused and await kube.delete("ConfigMap", name):
            deleted.append(f"ConfigMap/{name}")
    return deleted


async def settle(
    kube: Kube,
    deployment: dict[str, Any],
    emit: Emit,
    applied: bool,
    rollout_timeout: float,
    on_pod_started: Callable[[str], None] | None,
    content_hash: str | None = None,
) -> CycleResult:
    """Nothing to roll out: the Deployment already has the wanted template. Report where
    its rollout stands, following it if it is still under way."""
    status = plan.rollout_status(deployment)
    if status.state == plan.COMPLETE:
        pod = await serving_pod(kube, deployment)
        # Complete by its status, yet no Ready pod: the serving pod was just replaced and
        # the controllers have not written that down yet. Its replacement is followed.
        if pod or deployment["spec"].get("replicas", 1) == 0:
            if not applied and content_hash is not None:
                emit(events.Unchanged(content_hash, pod))
            return CycleResult(applied, False, serving=pod, deployment=deployment)
    if status.state == plan.PAUSED:
        failure = paused_failure(deployment["metadata"]["name"], kube.namespace)
        emit(failure)
        return CycleResult(applied, False, RolloutResult(False, failure=failure), "", deployment)
    # Under way (a cycle cut short, or someone else's change), or stuck: follow it.
    name = deployment["metadata"]["name"]
    emit(events.RestartTriggered(name, "in-progress"))
    watch = RolloutWatch(kube, name, deployment["spec"]["selector"]["matchLabels"])
    try:
        rollout = await follow_rollout(
            kube, deployment, emit, rollout_timeout, time.monotonic(), on_pod_started, None, watch
        )
    finally:
        await watch.close()
    return CycleResult(applied, False, rollout, "", deployment)


async def follow_existing(
    kube: Kube,
    name: str,
    emit: Emit,
    rollout_timeout: float,
    on_pod_started: Callable[[str], None] | None,
) -> CycleResult | None:
    """A change seen in the cluster (someone else's rollout, a deleted pod): follow what
    the Deployment does now, applying nothing. None when the Deployment is gone."""
    deployment = await informers.of(kube).get("Deployment", name)
    if deployment is None:
        return None
    return await settle(kube, deployment, emit, False, rollout_timeout, on_pod_started)


def open_rollout_watch(kube: Kube, bundle: Bundle) -> RolloutWatch:
    return RolloutWatch(
        kube,
        bundle.deployment["metadata"]["name"],
        bundle.deployment["spec"]["selector"]["matchLabels"],
    )
