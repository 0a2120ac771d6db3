"""The dev loop: file batches in, deploy cycles out, one at a time, always converging to
what is on disk.

- Single flight: at most one cycle runs. Changes that arrive meanwhile are coalesced
  into exactly one follow-up cycle, which renders what is on disk when it starts.
- A save that renders to what runs already deploys nothing, and says so.
- An invalid edit reports file:line and leaves the running deploy alone; the next valid
  save recovers.
- Cluster faults are retried with capped, jittered exponential back-off; changes made
  meanwhile join the retried cycle, so recovery deploys the latest state once.
- A missing workflow directory is waited for; watching resumes when it returns.

The loop emits typed events and knows nothing about how they are shown. Front ends drive
it through its control methods: redeploy, pause/resume, trigger_run, quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devloop import events
from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle
from devloop.kube.errors import KubeError
from devloop.kube.logs import tail_logs
from devloop.kube.preflight import preflight
from devloop.kube.rollout import find_new_replica_set, selector_string
from devloop.manifests import ENGINE_PORT
from devloop.render import Bundle, RenderOptions, render
from devloop.waits import event_or_timeout, finish, within
from devloop.watch import DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_WAIT_MS, batches

Emit = Callable[[events.Event], None]
QUIT_GRACE_S = 1.0  # how long a task may take to end once told to


@dataclass
class LoopSettings:
    directory: Path
    render: RenderOptions
    context: str = ""
    debounce_ms: int = DEFAULT_DEBOUNCE_MS
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS
    rollout_timeout: float = 120
    create_namespace: bool = False
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0
    missing_dir_poll_s: float = 0.5


@dataclass
class _Pending:
    paths: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    force: bool = False

    def __bool__(self) -> bool:
        return bool(self.reasons)


def backoff_delay(attempt: int, initial: float, cap: float) -> float:
    """Exponential, capped, with ±20 % jitter so that several clients do not retry in step."""
    base: float = min(cap, initial * 2.0 ** (attempt - 1))
    return base * random.uniform(0.8, 1.2)


def latest_mtime(root: Path, paths: set[str]) -> float | None:
    """When the last of these files was written (wall clock), for edit-to-Ready timing."""
    times = []
    for rel in paths:
        with contextlib.suppress(OSError):
            times.append((root / rel).stat().st_mtime)
    return max(times) if times else None


def files_changed(before: Bundle | None, after: Bundle) -> tuple[str, ...]:
    """The code files whose content differs from the running deploy."""
    old = {f.path: f.text for f in before.files} if before else {}
    new = {f.path: f.text for f in after.files}
    return tuple(sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p)))


class DevLoop:
    def __init__(self, settings: LoopSettings, kube: Kube, emit: Emit) -> None:
        self.settings = settings
        self.kube = kube
        self.emit = emit
        self.stamps = RestartStamps()
        self.pending = _Pending()
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.paused = False
        self.cycle_number = 0
        self.deployed: Bundle | None = None
        self.previous_deployed: Bundle | None = None
        self.current_pod = ""
        self.tails: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self.state = ""
        self.preflight_done = False

    # --- control API (both front ends) ------------------------------------------------------

    def redeploy(self) -> None:
        """Deploy now, restarting the pod even when nothing changed."""
        self._request(set(), "redeploy", force=True)

    def pause(self) -> None:
        self.paused = True
        self._set_state("paused", "changes are collected and deployed on resume")

    def resume(self) -> None:
        self.paused = False
        self._set_state("watching")
        if self.pending:
            self.wake.set()

    async def trigger_run(self, body: object = None) -> events.RunResult:
        """POST /run to the workflow through the API server's service proxy."""
        name = self.deployed.workflow.name if self.deployed else ""
        if not name:
            result = events.RunResult(0, "nothing deployed yet")
        else:
            try:
                status, answer = await self.kube.proxy_post(
                    name, ENGINE_PORT, "run", body if body is not None else {}
                )
                result = events.RunResult(status, answer)
            except KubeError as exc:
                result = events.RunResult(exc.status, str(exc))
        self.emit(result)
        return result

    def quit(self) -> None:
        self.stopping.set()

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._request(set(), "start")
        watcher = asyncio.create_task(self._watch_files())
        worker = asyncio.create_task(self._work())
        try:
            await self.stopping.wait()
        finally:
            for task in (watcher, worker):
                await finish(task, QUIT_GRACE_S)
            await self._stop_tails(keep=None)

    def _request(self, paths: set[str], reason: str, force: bool = False) -> None:
        self.pending.paths |= paths
        self.pending.reasons.append(reason)
        self.pending.force |= force
        if not self.paused or reason in ("start", "redeploy"):
            self.wake.set()

    def _set_state(self, state: str, detail: str = "") -> None:
        if state != self.state or detail:  # repeat a state only to update its detail
            self.state = state
            self.emit(events.LoopState(state, detail))

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless quitting; True when quitting."""
        return await event_or_timeout(self.stopping, seconds)

    async def _watch_files(self) -> None:
        root = self.settings.directory
        while not self.stopping.is_set():
            if not root.is_dir():
                self._set_state("waiting", f"{root} is missing; waiting for it to return")
                while not root.is_dir():
                    if await self._sleep(self.settings.missing_dir_poll_s):
                        return
                self.emit(events.Warning(f"{root} is back"))
                self._set_state("watching")
                self._request(set(), "recovered")
            session_over = asyncio.Event()
            guard = asyncio.create_task(self._guard_directory(session_over))
            try:
                async for batch in batches(
                    root, self.settings.debounce_ms, self.settings.max_wait_ms, session_over
                ):
                    self._request(set(batch.paths), "change")
            except OSError:
                pass  # the directory went away under the watcher
            finally:
                guard.cancel()

    async def _guard_directory(self, session_over: asyncio.Event) -> None:
        """End the watch session when quitting or when the directory disappears (a watch
        on a moved or deleted directory reports nothing more)."""
        root = self.settings.directory
        while root.is_dir() and not await self._sleep(self.settings.missing_dir_poll_s):
            pass
        session_over.set()

    async def _work(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if not self.pending or (
                self.paused and not self.pending.force and "start" not in self.pending.reasons
            ):
                continue
            taken, self.pending = self.pending, _Pending()
            if not self.preflight_done and not await self._preflight():
                return
            await self._cycle(taken)
            if self.pending and not self.paused:
                self.wake.set()

    async def _preflight(self) -> bool:
        attempt = 0
        while True:
            checks = await preflight(
                self.kube,
                self.settings.context,
                self.settings.render.runtime_class,
                with_secret=True,
                with_cronjobs=True,
                create_namespace=self.settings.create_namespace,
            )
            lines = tuple(line for c in checks for line in c.lines())
            ok = all(c.ok for c in checks)
            self.emit(events.PreflightReport(lines, ok))
            reachable = not checks[0].title.startswith("Kubernetes API not reachable")
            if ok or reachable:
                # Other failures are reported; each cycle will then show the cluster's error.
                self.preflight_done = True
                return True
            attempt += 1
            delay = backoff_delay(attempt, self.settings.retry_initial_s, self.settings.retry_max_s)
            self.emit(events.Retrying("cluster check", attempt, delay, checks[0].title))
            self._set_state("retrying", "cluster unreachable")
            if await self._sleep(delay):
                return False

    async def _cycle(self, taken: _Pending) -> None:
        self.cycle_number += 1
        number = self.cycle_number
        reason = taken.reasons[0] if len(set(taken.reasons)) == 1 else "change"
        if "redeploy" in taken.reasons:
            reason = "redeploy"
        self.emit(events.CycleStarted(number, tuple(sorted(taken.paths)), reason))
        self._set_state("deploying")
        edit_time = latest_mtime(self.settings.directory, taken.paths)
        changed = set(taken.paths)
        force = taken.force
        attempt = 0
        while True:
            t0 = time.perf_counter()
            result = await asyncio.to_thread(render, self.settings.directory, self.settings.render)
            if not isinstance(result, Bundle):
                self.emit(events.RenderFailed(tuple(result)))
                self.emit(events.CycleFinished(number, "invalid"))
                self._set_state("error", f"{len(result)} problem(s) in the workflow")
                return
            bundle = result
            self.emit(
                events.Rendered(
                    bundle.content_hash,
                    bundle.code_bytes,
                    files_changed(self.deployed, bundle),
                    (time.perf_counter() - t0) * 1000,
                )
            )
            if not force and self._same_as_deployed(bundle):
                self.emit(events.Unchanged(bundle.content_hash))
                self.emit(events.CycleFinished(number, "unchanged"))
                self._set_state("watching")
                return
            try:
                cycle = await deploy_cycle(
                    self.kube,
                    bundle,
                    self.emit,
                    self.stamps,
                    force_restart=force,
                    rollout_timeout=self.settings.rollout_timeout,
                    on_pod_started=self._start_tail,
                    edited_at=edit_time,
                )
            except KubeError as exc:
                if not exc.retryable:
                    self.emit(events.Error(str(exc), tuple(exc.details())))
                    self.emit(events.CycleFinished(number, "failed"))
                    self._set_state("error", str(exc))
                    return
                attempt += 1
                delay = backoff_delay(
                    attempt, self.settings.retry_initial_s, self.settings.retry_max_s
                )
                self.emit(events.Retrying("deploy", attempt, delay, str(exc)))
                self._set_state("retrying", str(exc))
                if await self._sleep(delay):
                    return
                # Changes made meanwhile join this cycle: recovery deploys the latest once.
                if self.pending:
                    changed |= self.pending.paths
                    force |= self.pending.force
                    self.pending = _Pending()
                continue
            break
        if self.deployed is not None and self.deployed.content_hash != bundle.content_hash:
            self.previous_deployed = self.deployed
        self.deployed = bundle
        outcome = "applied" if cycle.applied else "unchanged"
        edit_to_ready = None
        if cycle.rollout is not None:
            if cycle.rollout.ok:
                outcome = "ready"
                self.current_pod = cycle.rollout.pod
                await self._stop_tails(keep=self.current_pod)
                if edit_time is not None:
                    edit_to_ready = (time.time() - edit_time) * 1000
            else:
                outcome = "failed"
        elif not cycle.applied and not self.current_pod:
            await self._attach_to_running(bundle)
        self.emit(events.CycleFinished(number, outcome, edit_to_ready))
        self._set_state(
            "watching" if outcome != "failed" else "error",
            "" if outcome != "failed" else "the new pod failed; the previous one keeps running",
        )

    def _same_as_deployed(self, bundle: Bundle) -> bool:
        d = self.deployed
        return (
            d is not None
            and d.content_hash == bundle.content_hash
            and d.spec_hash == bundle.spec_hash
            and (d.secret or {}).get("data") == (bundle.secret or {}).get("data")
        )

    # --- logs ----------------------------------------------------------------------------------

    def _start_tail(self, pod: str) -> None:
        if pod in self.tails:
            return
        stop = asyncio.Event()
        task = asyncio.create_task(tail_logs(self.kube, pod, self.emit, stop))
        self.tails[pod] = (task, stop)

    async def _stop_tails(self, keep: str | None) -> None:
        for pod in [p for p in self.tails if p != keep]:
            task, stop = self.tails.pop(pod)
            stop.set()
            await asyncio.wait({task}, timeout=QUIT_GRACE_S)
            await finish(task, QUIT_GRACE_S)

    async def _attach_to_running(self, bundle: Bundle) -> None:
        """pdwatch restarted on unchanged code: follow the pod that already runs it."""
        deployment = await self.kube.get("Deployment", bundle.deployment["metadata"]["name"])
        if deployment is None:
            return
        try:
            rs = await within(find_new_replica_set(self.kube, deployment), 5)
        except (TimeoutError, KubeError):
            return
        selector = selector_string(
            {
                **deployment["spec"]["selector"].get("matchLabels", {}),
                "pod-template-hash": rs["metadata"]["labels"].get("pod-template-hash", ""),
            }
        )
        pods = (await self.kube.list("Pod", label_selector=selector)).get("items") or []
        running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if running:
            self.current_pod = running[-1]["metadata"]["name"]
            self._start_tail(self.current_pod)
