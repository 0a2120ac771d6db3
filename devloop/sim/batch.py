"""The CronJob and Job controllers: a cron trigger creates a Job at its scheduled minute,
the Job runs a pod to completion, the CronJob keeps its history.

Following kubernetes pkg/controller/cronjob (Job names `<cronjob>-<scheduled minutes
since the epoch>`, the scheduled-timestamp annotation, concurrencyPolicy, history
limits, SuccessfulCreate / SawCompletedJob / JobAlreadyActive events) and
pkg/controller/job (one pod at a time, backoffLimit, SuccessCriteriaMet then Complete,
or FailureTarget then Failed with BackoffLimitExceeded). Only the most recent missed
schedule runs, as the controller does after a downtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from devloop.sim.controllers import MANAGER, owned_by, owner_ref, pod_for
from devloop.sim.cron import next_run
from devloop.sim.errors import ApiError
from devloop.sim.resources import of_kind
from devloop.sim.store import WatchEvent, now_rfc3339, parse_rfc3339, rfc3339

if TYPE_CHECKING:
    from devloop.sim.api import Api
    from devloop.sim.settings import SimSettings
    from devloop.sim.store import Store

JOBS = of_kind("batch/v1", "Job")
CRONJOBS = of_kind("batch/v1", "CronJob")
PODS = of_kind("v1", "Pod")
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
MISSED_LOOKBACK = 100  # schedules looked at after a downtime, as the controller's limit


def parse_time(text: str | None) -> float | None:
    return parse_rfc3339(text) if text else None


def condition(obj: dict[str, Any], type_: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def finished(job: dict[str, Any]) -> str | None:
    """ "Complete", "Failed", or None while it runs."""
    for type_ in ("Complete", "Failed"):
        if condition(job, type_):
            return type_
    return None


class Batch:
    def __init__(self, api: Api, store: Store, settings: SimSettings) -> None:
        self.api, self.store, self.settings = api, store, settings
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        store.listeners.append(self.on_event)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.run_jobs()), loop.create_task(self.run_cron())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def on_event(self, event: WatchEvent) -> None:
        obj, kind = event.object, event.resource.kind
        ns = obj["metadata"].get("namespace", "")
        if kind == "Job" and event.type != "DELETED":
            self.queue.put_nowait((ns, obj["metadata"]["name"]))
        elif kind == "Pod":
            for ref in obj["metadata"].get("ownerReferences") or []:
                if ref.get("kind") == "Job" and ref.get("controller"):
                    self.queue.put_nowait((ns, ref["name"]))

    # --- jobs -------------------------------------------------------------------------------

    async def run_jobs(self) -> None:
        while True:
            ns, name = await self.queue.get()
            try:
                self.sync_job(ns, name)
            except ApiError:
                asyncio.get_running_loop().call_later(1.0, self.queue.put_nowait, (ns, name))
            await asyncio.sleep(0)

    def sync_job(self, ns: str, name: str) -> None:
        job = self.store.find(JOBS, ns, name)
        if job is None or job["metadata"].get("deletionTimestamp") or finished(job):
            return
        spec = job["spec"]
        pods = self.store.list(PODS, ns, lambda p: owned_by(p, job))
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        active = [
            p
            for p, phase in zip(pods, phases, strict=True)
            if phase not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
        ]
        status = job.setdefault("status", {})
        before = dict(status)
        now = now_rfc3339()
        status.setdefault("startTime", now)
        if succeeded >= spec.get("completions", 1):
            for type_ in ("SuccessCriteriaMet", "Complete"):
                self._condition(
                    status,
                    type_,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                )
            status["completionTime"] = now
            self.api.record_event(job, "Completed", "Job completed", component="job-controller")
        elif failed > spec.get("backoffLimit", 6):
            message = "Job has reached the specified backoff limit"
            for type_ in ("FailureTarget", "Failed"):
                self._condition(status, type_, "BackoffLimitExceeded", message, now)
            self.api.record_event(
                job, "BackoffLimitExceeded", message, "Warning", component="job-controller"
            )
        elif not active:
            pod = self.api.create(PODS, ns, pod_for(job), MANAGER)
            active.append(pod)
            self.api.record_event(
                job,
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                component="job-controller",
            )
        status["active"] = len(active) if not finished({"status": status}) else 0
        status["succeeded"], status["failed"] = succeeded, failed
        status["ready"] = sum(
            any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (p.get("status") or {}).get("conditions") or []
            )
            for p in active
        )
        for key in ("active", "succeeded", "failed"):
            if status[key] == 0:
                status.pop(key)
        if status != before:
            self.api.update(JOBS, ns, name, job, MANAGER, "status")

    @staticmethod
    def _condition(status: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        status.setdefault("conditions", []).append(
            {
                "type": type_,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": now,
                "lastTransitionTime": now,
            }
        )

    # --- cron jobs --------------------------------------------------------------------------

    async def run_cron(self) -> None:
        """One CronJob at a time, yielding between them: the API server shares this event
        loop and must keep answering while many CronJobs fire in the same minute."""
        while True:
            for cronjob in self.store.list(CRONJOBS):
                # a bad schedule, or a write that lost a race: the next tick tries again
                with contextlib.suppress(ApiError, ValueError):
                    self.sync_cronjob(cronjob)
                await asyncio.sleep(0)
            await asyncio.sleep(self.settings.cron_tick)

    def sync_cronjob(self, cj: dict[str, Any]) -> None:
        meta, spec = cj["metadata"], cj["spec"]
        ns, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            return
        status = cj.setdefault("status", {})
        before = {k: v for k, v in status.items()}
        jobs = self.store.list(JOBS, ns, lambda j: owned_by(j, cj))
        running = [j for j in jobs if not finished(j)]
        was_active = {ref.get("name") for ref in status.get("active") or []}
        for job in jobs:
            outcome = finished(job)
            if outcome and job["metadata"]["name"] in was_active:
                self.api.record_event(
                    cj,
                    "SawCompletedJob",
                    f"Saw completed job: {job['metadata']['name']}, status: {outcome}",
                    component="cronjob-controller",
                )
            if outcome == "Complete":
                done_at = (job.get("status") or {}).get("completionTime")
                if done_at and done_at > status.get("lastSuccessfulTime", ""):
                    status["lastSuccessfulTime"] = done_at
        scheduled = self._due(cj)
        if scheduled is not None and not spec.get("suspend"):
            if spec.get("concurrencyPolicy") == "Forbid" and running:
                self.api.record_event(
                    cj,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency "
                    "policy is Forbid",
                    component="cronjob-controller",
                )
            else:
                if spec.get("concurrencyPolicy") == "Replace":
                    for job in running:
                        self.api.delete(JOBS, ns, job["metadata"]["name"])
                    running = []
                running.append(self._create_job(cj, scheduled))
                status["lastScheduleTime"] = rfc3339(scheduled)
        status["active"] = [
            {
                "kind": "Job",
                "namespace": ns,
                "name": j["metadata"]["name"],
                "uid": j["metadata"]["uid"],
                "apiVersion": "batch/v1",
                "resourceVersion": j["metadata"].get("resourceVersion", ""),
            }
            for j in running
        ]
        if not status["active"]:
            status.pop("active")
        self._prune(cj, jobs)
        if status != before:
            self.api.update(CRONJOBS, ns, name, cj, MANAGER, "status")

    def _due(self, cj: dict[str, Any]) -> float | None:
        """The most recent scheduled time not yet run, if one has come."""
        status = cj.get("status") or {}
        since = parse_time(status.get("lastScheduleTime")) or parse_time(
            cj["metadata"].get("creationTimestamp")
        )
        now = self.settings.clock()
        if since is None:
            return None
        latest = None
        t = next_run(cj["spec"]["schedule"], since)
        for _ in range(MISSED_LOOKBACK):
            if t > now:
                break
            latest = t
            t = next_run(cj["spec"]["schedule"], t)
        return latest

    def _create_job(self, cj: dict[str, Any], scheduled: float) -> dict[str, Any]:
        template = cj["spec"].get("jobTemplate") or {}
        meta = template.get("metadata") or {}
        ns, name = cj["metadata"]["namespace"], f"{cj['metadata']['name']}-{int(scheduled // 60)}"
        existing = self.store.find(JOBS, ns, name)
        if existing is not None:  # created on an earlier tick whose status write was lost
            return existing
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(meta.get("labels") or {}),
                "annotations": {
                    **(meta.get("annotations") or {}),
                    SCHEDULED_AT: rfc3339(scheduled),
                },
                "ownerReferences": [owner_ref(cj)],
            },
            "spec": template.get("spec") or {},
        }
        created = self.api.create(JOBS, ns, job, MANAGER)
        self.api.record_event(
            cj,
            "SuccessfulCreate",
            f"Created job {created['metadata']['name']}",
            component="cronjob-controller",
        )
        return created

    def _prune(self, cj: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
        """Keep the newest finished Jobs within the history limits; delete the rest."""
        spec = cj["spec"]
        for outcome, limit in (
            ("Complete", spec.get("successfulJobsHistoryLimit", 3)),
            ("Failed", spec.get("failedJobsHistoryLimit", 1)),
        ):
            done = sorted(
                (j for j in jobs if finished(j) == outcome),
                key=lambda j: (j.get("status") or {}).get("startTime", ""),
            )
            for job in done[: max(0, len(done) - limit)]:
                self.api.delete(JOBS, job["metadata"]["namespace"], job["metadata"]["name"])
                self.api.record_event(
                    cj,
                    "SuccessfulDelete",
                    f"Deleted job {job['metadata']['name']}",
                    component="cronjob-controller",
                )
