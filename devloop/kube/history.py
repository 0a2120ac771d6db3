"""The deploy history in the cluster (see history.py): read it, record a deploy, remove it."""

from __future__ import annotations

from datetime import UTC, datetime

from devloop import history
from devloop.history import RecordPlan, Revision
from devloop.kube import informers, plan
from devloop.kube.client import Kube
from devloop.manifests import owned_by_workflow, snapshot_labels
from devloop.render import Bundle


async def load(kube: Kube, workflow: str) -> list[Revision]:
    """The workflow's revisions, newest first (only ConfigMaps that carry its labels)."""
    listed = await informers.of(kube).items("ConfigMap", history.labels(workflow))
    return history.revisions([cm for cm in listed if owned_by_workflow(cm, workflow)])


async def live_hash(kube: Kube, deployment: str) -> str | None:
    """The code hash the Deployment's pod template runs (None: not deployed)."""
    return plan.template_hash(await informers.of(kube).get("Deployment", deployment))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def record(kube: Kube, bundle: Bundle, limit: int) -> RecordPlan:
    """Record a deploy that reached Ready: a new revision unless its code is recorded,
    then the oldest beyond `limit` deleted. Returns what was done."""
    existing = await load(kube, bundle.workflow.name)
    plan = history.plan_record(existing, bundle.config_map, bundle.content_hash, now(), limit)
    if plan.create is not None:
        await kube.apply(plan.create)
    for name in plan.delete:
        await kube.delete("ConfigMap", name)
    return plan


async def remove(kube: Kube, workflow: str) -> list[str]:
    """Delete every revision and every code copy the pods mounted (`--down`)."""
    deleted = []
    for revision in await load(kube, workflow):
        if await kube.delete("ConfigMap", revision.name):
            deleted.append(f"ConfigMap/{revision.name}")
    for snapshot in await informers.of(kube).items("ConfigMap", snapshot_labels(workflow)):
        name = snapshot["metadata"]["name"]
        if owned_by_workflow(snapshot, workflow) and await kube.delete("ConfigMap", name):
            deleted.append(f"ConfigMap/{name}")
    return deleted
