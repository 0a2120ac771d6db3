"""One deploy cycle: apply what changed, roll out exactly once, follow the new pod.

1. Read the ConfigMap, Deployment and Secret in one parallel round. Skip everything when
   the cluster already runs this exact bundle (both hashes on the ConfigMap match, the
   Deployment exists, the Secret holds the same data).
2. Server-side apply (forced: pdwatch owns these objects) in order: Secret, ConfigMap,
   Service, CronJobs, Deployment; the ConfigMap always before any restart. When only code
   (or secrets) changed, only those are applied: the rest is known to be in place. CronJobs
   and a Secret the workflow no longer renders are deleted, when they carry its labels.
3. One rollout: when the apply changed the pod template, that is the rollout; otherwise,
   when the code or secrets changed, a `kubectl.kubernetes.io/restartedAt` stamp that is
   unique per call (microseconds, bumped on a tie) starts it.
4. Follow the rollout to the new pod's Ready, or its failure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devloop import events
from devloop.kube.client import FIELD_MANAGER, Kube
from devloop.kube.errors import KubeError, Timeout
from devloop.kube.rollout import RolloutResult, RolloutWatch, follow_rollout
from devloop.manifests import (
    CONTENT_HASH_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    owned_by_workflow,
    ownership_selector,
)
from devloop.render import Bundle
from devloop.waits import within

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


@dataclass
class LiveState:
    """What the cluster runs now, read in one parallel round before a cycle."""

    config_map: dict[str, Any] | None
    deployment: dict[str, Any] | None
    secret: dict[str, Any] | None

    def annotation(self, key: str) -> str | None:
        meta = (self.config_map or {}).get("metadata") or {}
        return (meta.get("annotations") or {}).get(key)


async def read_live(kube: Kube, bundle: Bundle) -> LiveState:
    cm, deployment, secret = await asyncio.gather(
        kube.get("ConfigMap", bundle.config_map["metadata"]["name"]),
        kube.get("Deployment", bundle.deployment["metadata"]["name"]),
        kube.get("Secret", f"{bundle.workflow.name}-secrets"),
    )
    return LiveState(cm, deployment, secret)


def drifted(deployment: dict[str, Any] | None) -> bool:
    """Whether someone else wrote the Deployment's spec or metadata (kubectl edit, scale,
    set image …): then the full apply runs, taking those fields back. Status writers (the
    controller) and pdwatch itself do not count."""
    if deployment is None:
        return True
    entries = deployment["metadata"].get("managedFields") or []
    return any(e.get("manager") != FIELD_MANAGER and not e.get("subresource") for e in entries)


def secret_matches(live: LiveState, bundle: Bundle) -> bool:
    if bundle.secret is None:
        return live.secret is None or not owned_by_workflow(live.secret, bundle.workflow.name)
    return live.secret is not None and (live.secret.get("data") or {}) == bundle.secret["data"]


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
    live = await read_live(kube, bundle)
    code_changed = live.annotation(CONTENT_HASH_ANNOTATION) != bundle.content_hash
    spec_changed = live.annotation(SPEC_HASH_ANNOTATION) != bundle.spec_hash or drifted(
        live.deployment
    )
    secret_changed = not secret_matches(live, bundle)
    if not (force_restart or code_changed or spec_changed or secret_changed):
        emit(events.Unchanged(bundle.content_hash))
        return CycleResult(applied=False, restarted=False)
    name = bundle.deployment["metadata"]["name"]
    # Only what changed: a code edit applies the ConfigMap (and Secret) and restarts.
    manifests = (
        bundle.manifests()
        if spec_changed
        else [
            m
            for m in bundle.manifests()
            if m["kind"] == "ConfigMap" or (m["kind"] == "Secret" and secret_changed)
        ]
    )
    t0 = time.monotonic()
    applied = []
    deployment: dict[str, Any] = live.deployment or {}
    for manifest in manifests:
        result = await kube.apply(manifest)
        applied.append(f"{manifest['kind']}/{manifest['metadata']['name']}")
        if manifest["kind"] == "Deployment":
            deployment = result
    pruned = await _prune(kube, bundle, live) if spec_changed or secret_changed else []
    emit(events.Applied(tuple(applied), (time.monotonic() - t0) * 1000, tuple(pruned)))
    template_changed = live.deployment is None or (
        live.deployment["spec"]["template"] != deployment["spec"]["template"]
    )
    restart_at = time.monotonic()
    if template_changed:
        emit(events.RestartTriggered(name, "template"))
        watch = open_rollout_watch(kube, bundle)
    elif code_changed or secret_changed or force_restart:
        stamp = stamps.next()
        # The restart request goes out first; the rollout's watches open while it is
        # applied, so the new pod is seen as it appears instead of looked up afterwards.
        restarting = asyncio.create_task(rollout_restart(kube, name, stamp, restart_timeout))
        await asyncio.sleep(0)
        watch = open_rollout_watch(kube, bundle)
        try:
            deployment = await restarting
        except BaseException:
            await watch.close()
            raise
        emit(events.RestartTriggered(name, "restartedAt", stamp))
    else:
        return CycleResult(applied=True, restarted=False)
    try:
        rollout = await follow_rollout(
            kube, deployment, emit, rollout_timeout, restart_at, on_pod_started, edited_at, watch
        )
    finally:
        await watch.close()
    return CycleResult(applied=True, restarted=True, rollout=rollout)


def open_rollout_watch(kube: Kube, bundle: Bundle) -> RolloutWatch:
    return RolloutWatch(kube, bundle.deployment["spec"]["selector"]["matchLabels"])


async def _prune(kube: Kube, bundle: Bundle, live: LiveState) -> list[str]:
    """Delete CronJobs (and the Secret) this workflow rendered before but no longer does."""
    wanted = {c["metadata"]["name"] for c in bundle.cronjobs}
    selector = ownership_selector(bundle.workflow.name)
    pruned = []
    listed = await kube.list("CronJob", label_selector=selector)
    for cron in listed.get("items") or []:
        cron_name = cron["metadata"]["name"]
        if cron_name not in wanted and await kube.delete("CronJob", cron_name):
            pruned.append(f"CronJob/{cron_name}")
    if (
        bundle.secret is None
        and live.secret is not None
        and owned_by_workflow(live.secret, bundle.workflow.name)
    ):
        name = f"{bundle.workflow.name}-secrets"
        if await kube.delete("Secret", name):
            pruned.append(f"Secret/{name}")
    return pruned
