"""The dev loop: file batches in, deploy cycles out, one at a time, always converging to
what is on disk.

- Single flight: at most one cycle runs. Changes that arrive meanwhile are coalesced
  into exactly one follow-up cycle, which renders what is on disk when it starts.
- Whether anything must be applied or rolled out is decided by one rule, from what the
  cluster runs (kube/plan.py): a save that renders to what runs deploys nothing and says
  so; a cycle cut short by a fault is finished by the next one, with one rollout.
- An invalid edit reports file:line and leaves the running deploy alone; the next valid
  save recovers. An unexpected exception in a cycle is an error event, not the end of
  the loop: the next save deploys.
- Cluster faults are retried with capped, jittered exponential back-off; changes made
  meanwhile join the retried cycle, so recovery deploys the latest state once.
- While idle, the Deployment and its pods are watched: a Deployment deleted behind
  pdwatch (or a cluster recreated empty) is redeployed; a rollout someone else started
  (kubectl rollout restart/undo, a deleted pod) is followed and shown, not fought.
- A missing workflow directory is waited for; watching resumes when it returns.

The loop emits typed events and knows nothing about how they are shown. Front ends drive
it through its control methods: redeploy, pause/resume, trigger_run, quit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Coroutine
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devloop import events
from devloop import workflowstate as ws
from devloop.explain import Situation, explaining
from devloop.history import REVISION_ANNOTATION, Revision, unknown_revision
from devloop.image import files_outside
from devloop.kube import history as kube_history
from devloop.kube import informers, plan, retry
from devloop.kube.client import Kube
from devloop.kube.deploy import CycleResult, RestartStamps, deploy_cycle, follow_existing
from devloop.kube.errors import KubeError, NotFound
from devloop.kube.logs import tail_logs
from devloop.kube.preflight import preflight
from devloop.kube.rollout import ready_pod
from devloop.localurl import Answer, LocalUrl, PodRoute
from devloop.render import Bundle, RenderOptions, render
from devloop.rollback import revision_bundle
from devloop.runresult import summarize
from devloop.sessionstate import Store
from devloop.sharedsecrets import shared_files
from devloop.supervise import report, supervised
from devloop.waits import event_or_timeout, finish
from devloop.watch import (
    DEFAULT_DEBOUNCE_MS,
    DEFAULT_MAX_WAIT_MS,
    WatchedDirectory,
    WatchFailed,
    WatchHub,
    batches,
)
from devloop.webhooktest import Delivery, delivery
from devloop.workflowstate import Pending, WorkflowState

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
    history_limit: int = 10
    url_port: int | None = None  # the local URL's port (0: a free one); None: no URL


def waiting_changes(paths: AbstractSet[str]) -> str:
    """What a paused session says it holds back."""
    if not paths:
        return "changes are collected and deployed on resume"
    shown = ", ".join(sorted(paths)[:3]) + (", …" if len(paths) > 3 else "")
    return f"{len(paths)} changed file(s) wait: {shown}; deployed on resume"


def file_signatures(paths: list[Path]) -> dict[Path, tuple[int, int, int, int]]:
    """(inode, size, mtime, ctime) of each of `paths` that exists: a change to any is a save."""
    found = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return found


def files_changed(before: Bundle | None, after: Bundle) -> tuple[str, ...]:
    """The code files whose content differs from the running deploy."""
    old = {f.path: f.text for f in before.files} if before else {}
    new = {f.path: f.text for f in after.files}
    return tuple(sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p)))


class DevLoop:
    def __init__(
        self, settings: LoopSettings, kube: Kube, emit: Emit, store: Store | None = None
    ) -> None:
        """`store`: the session's (devloop.sessionstate), shared by its workflows."""
        self.settings = settings
        self.kube = kube
        self.emit = emit
        self.stamps = RestartStamps()
        self.store = store or Store()
        self.key = str(settings.directory)  # this workflow's in the session's state
        self.wake = asyncio.Event()
        self.stopping = asyncio.Event()
        self.route = PodRoute(kube, lambda: self.state.serving)  # the URL's and `t`'s
        self.tails: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self.monitor: asyncio.Task[None] | None = None
        self.monitored = ""  # the Deployment the monitor watches
        self.to_record: asyncio.Queue[Bundle] = asyncio.Queue()
        self.watch_hub: WatchHub | None = None  # the session's one file watcher (several)

    def dispatch(self, action: ws.Action) -> WorkflowState:
        """The one way the loop's state changes."""
        return self.store.dispatch(self.key, action)

    @property
    def state(self) -> WorkflowState:
        """This workflow's state, as the session's store holds it."""
        return self.store.state.of(self.key)

    # --- the state, read by the front ends ---------------------------------------------------

    @property
    def paused(self) -> bool:
        return self.state.paused

    @property
    def deployed(self) -> Bundle | None:
        return self.state.deployed

    @property
    def previous_deployed(self) -> Bundle | None:
        return self.state.previous_deployed

    @property
    def current_pod(self) -> str:
        return self.state.serving

    # --- control API (both front ends) ------------------------------------------------------

    def redeploy(self) -> None:
        """Deploy now, restarting the pod even when nothing changed."""
        self._request(set(), "redeploy", force=True)

    def rollback(self, number: int) -> None:
        """Put revision `number` back live: one cycle, after the one running (if any)."""
        self.dispatch(ws.RollbackRequested(number))
        self._woken("rollback")

    async def history(self) -> tuple[list[Revision], str | None]:
        """The recorded revisions (newest first) and the code hash live now."""
        name = self.deployed.workflow.name if self.deployed else ""
        if not name:
            return [], None
        revisions = await kube_history.load(self.kube, name)
        return revisions, await kube_history.live_hash(self.kube, name)

    def pause(self) -> None:
        self.dispatch(ws.Paused())
        self._set_state("paused", waiting_changes(self.state.pending.paths))

    def resume(self) -> None:
        self.dispatch(ws.Resumed())
        self._set_state("watching")
        if ws.more_work(self.state):
            self.wake.set()

    async def trigger_run(self, body: object = None) -> events.RunResult:
        """POST /run to the pod being served, as the local URL sends it (the same pod)."""
        sent = json.dumps(body if body is not None else {}).encode()
        answer = await self.route.send("POST", "/run", sent, {"Content-Type": "application/json"})
        result = self._result(answer, "run")
        self.emit(result)
        return result

    async def send_webhook(self, payload: dict[str, object] | None = None) -> events.RunResult:
        """A test delivery to the workflow's webhook (devloop.webhooktest), signed with its
        secret, to the pod being served as the local URL sends it."""
        bundle = self.deployed
        if bundle is None:
            made: Delivery | str = "nothing deployed yet"
        else:
            secret = bundle.secret["data"] if bundle.secret else None
            made = delivery(
                bundle.workflow, bundle.format.format, secret, str(uuid.uuid4()), payload
            )
        if isinstance(made, str):
            result = events.RunResult(0, made, what="webhook")
        else:
            answer = await self.route.send("POST", made.path, made.body, made.headers)
            result = self._result(answer, made.what)
        self.emit(result)
        return result

    def _result(self, answer: Answer, what: str) -> events.RunResult:
        if answer.reason:
            return events.RunResult(0, answer.reason, what=what)
        text = answer.body.decode("utf-8", "replace")
        try:
            parsed: object = json.loads(text)
        except ValueError:
            parsed = text
        summary = summarize(answer.status, parsed) if what == "run" else ()
        return events.RunResult(answer.status, parsed, summary, what)

    def quit(self) -> None:
        self.stopping.set()

    # --- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._request(set(), "start")
        url = await self._start_url()
        watcher = self._supervised("the file watch", self._watch_files)
        worker = self._supervised("the deploy worker", self._work)
        recorder = self._supervised("the history recorder", self._record_history)
        try:
            await self.stopping.wait()
        finally:
            if note := ws.quit_note(self.state):
                self.emit(events.Warning(note))
            for task in (watcher, worker, recorder):
                await finish(task, QUIT_GRACE_S)
            await self._stop_monitor()
            await self._stop_tails(keep=None)
            if url is not None:  # answers what is in flight, then stops listening
                with contextlib.suppress(Exception, asyncio.TimeoutError):
                    await asyncio.wait_for(url.stop(), QUIT_GRACE_S)

    def _supervised(
        self, what: str, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> asyncio.Task[None]:
        """A background task whose failure is said, logged and followed by a restart."""
        return asyncio.create_task(supervised(what, run, self.emit, self.stopping))

    async def _start_url(self) -> LocalUrl | None:
        """The local URL to the pod being served (devloop.localurl), when asked for."""
        port = self.settings.url_port
        if port is None:
            return None
        url = LocalUrl(self.route, port)
        try:
            self.emit(events.Serving(await url.start()))
        except OSError as exc:
            self.emit(events.Warning(f"no local URL: port {port} is not free ({exc.strerror})"))
            return None
        return url

    def _request(
        self,
        paths: set[str],
        reason: str,
        force: bool = False,
        follow_only: bool = False,
        saved_at: float | None = None,
    ) -> None:
        asked = ws.Requested(frozenset(paths), reason, force, follow_only, saved_at, time.time())
        self.dispatch(asked)
        self._woken(reason, bool(paths))

    def _woken(self, reason: str, saved: bool = False) -> None:
        """The worker woken for a request, or, paused, the saves that wait said."""
        if ws.wakes(self.state, reason):
            self.wake.set()
        elif saved:
            self._set_state("paused", waiting_changes(self.state.pending.paths))

    def _set_state(self, state: str, detail: str = "") -> None:
        if ws.shows_status(self.state, state, detail):  # repeated only for a new detail
            self.dispatch(ws.Status(state, detail))
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
                    root,
                    self.settings.debounce_ms,
                    self.settings.max_wait_ms,
                    session_over,
                    self.watch_hub,
                ):
                    if batch.paths:
                        self._request(set(batch.paths), "change", saved_at=batch.saved_at)
                    else:  # the session's watcher restarted: what is on disk, if it differs
                        self._request(set(), "rescan")
            except OSError:
                pass  # the directory went away under the watcher
            except WatchFailed as exc:
                self.emit(events.Warning(f"the file watch stopped ({exc}); watching anew"))
                self._request(set(), "rescan")  # saves made meanwhile are on disk: deploy them
                if await self._sleep(self.settings.missing_dir_poll_s):
                    return
            finally:
                guard.cancel()

    def _files_outside(self) -> list[Path]:
        """Files outside the directory that shape the deploy, stat'ed rather than watched:
        the parents' image files, and the repository's shared secrets (listed each time:
        one made later counts)."""
        root = self.settings.directory
        return [*files_outside(root), *shared_files(root)]

    async def _guard_directory(self, session_over: asyncio.Event) -> None:
        """End the watch session when quitting, or when the directory disappears or is
        replaced: a watch on a moved, deleted or swapped-out directory (rm -rf DIR && cp -a
        SRC DIR, a mv swap, a DIR symlink pointed elsewhere) reports nothing more, so the
        directory is watched anew and what is in it now is deployed."""
        root = self.settings.directory
        watched = WatchedDirectory(root)
        seen = file_signatures(self._files_outside())
        try:
            while not await self._sleep(self.settings.missing_dir_poll_s):
                now = file_signatures(self._files_outside())
                if now != seen:
                    changed = {str(p) for p in {*now, *seen} if now.get(p) != seen.get(p)}
                    seen = now
                    self._request(changed, "change")
                state = watched.state()
                if state == "gone":
                    break
                if state == "replaced":
                    self.emit(events.Warning(f"{root} was replaced; watching the new one"))
                    self._request(set(), "directory replaced")
                    break
        finally:
            watched.close()
            session_over.set()

    async def _work(self) -> None:
        """The single worker. Supervised: whatever a cycle raises is reported and the next
        request is served; the loop never stays "deploying"."""
        while not self.stopping.is_set():
            await self.wake.wait()
            self.wake.clear()
            began = ws.next_cycle(self.state)
            if began is None:
                continue
            if not self.state.checked:
                checked = await self._preflight()
                if checked == "quit":
                    return
                if checked == "refused":
                    continue  # nothing deployed; the next save or `r` checks again
                began = ws.next_cycle(self.state)  # saves made during the check join it
                if began is None:
                    continue
            self.dispatch(began)
            if began.left:  # the rollback goes first; saves that came with it after it
                self.wake.set()
            try:
                await self._cycle(began.work)
            except Exception as exc:  # a bug or an unforeseen failure: say it, carry on
                report(
                    f"cycle {self.state.cycle}",
                    exc,
                    self.emit,
                    "the running deploy is untouched; the next save deploys again",
                )
                self.emit(events.CycleFinished(self.state.cycle, "failed"))
                self._set_state("error", "unexpected failure; see the error")
            finally:
                self.dispatch(ws.Idle())
            await self._ensure_monitor()
            if ws.more_work(self.state):
                self.wake.set()

    async def _preflight(self) -> str:
        """ "ok"; "refused": a check failed on a cluster that answers (as --once, nothing is
        deployed; the failed check and its fix are shown, and the next save or `r` checks
        again); "quit": pdwatch is quitting while the cluster did not answer."""
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
            reachable = all(c.reached for c in checks)
            if ok:
                self.dispatch(ws.Checked())
                return "ok"
            if reachable:
                failed = next(c for c in checks if not c.ok)
                self._set_state("error", f"{failed.title}; fix it, then save or press r")
                return "refused"
            attempt += 1
            delay = retry.delay(attempt, self.settings.retry_initial_s, self.settings.retry_max_s)
            self.emit(events.Retrying("cluster check", attempt, delay, checks[0].title))
            self._set_state("retrying", "cluster unreachable")
            if await self._sleep(delay):
                return "quit"

    async def _cycle(self, taken: Pending) -> None:
        number = self.state.cycle
        reason = ws.cycle_reason(taken)
        self.emit(events.CycleStarted(number, tuple(sorted(taken.paths)), reason))
        self._set_state("deploying" if not taken.follow_only else "following")
        edit_time = taken.saved_at
        force, follow_only = taken.force, taken.follow_only
        attempt = 0
        while True:
            try:
                outcome = await self._attempt(number, force, follow_only, edit_time, taken.rollback)
            except KubeError as exc:
                if isinstance(exc, NotFound) and await self._recreate_namespace(exc):
                    continue
                if not exc.retryable:
                    self._explaining("")(events.Error(str(exc), tuple(exc.details())))
                    self.emit(events.CycleFinished(number, "failed"))
                    self._set_state("error", str(exc))
                    return
                attempt += 1
                delay = retry.delay(
                    attempt,
                    self.settings.retry_initial_s,
                    self.settings.retry_max_s,
                    exc.retry_after,
                )
                self.emit(events.Retrying("deploy", attempt, delay, str(exc)))
                self._set_state("retrying", str(exc))
                if await self._sleep(delay):
                    return
                # Changes made meanwhile join this cycle: recovery deploys the latest once
                # (not into a rollback, and not a rollback asked for meanwhile: those go
                # after it).
                pending = self.state.pending
                if ws.joins_retry(taken, pending):
                    force |= pending.force
                    follow_only &= pending.follow_only
                    self.dispatch(ws.RetryJoined())
                continue
            if outcome is not None:
                return
            break

    async def _attempt(
        self,
        number: int,
        force: bool,
        follow_only: bool,
        edit_time: float | None,
        rollback: int | None = None,
    ) -> str | None:
        """One try of a cycle; KubeError is the caller's to retry."""
        if rollback is not None:
            return await self._roll_back(number, rollback)
        known = self.state.known
        if follow_only and known is not None:
            served = await self._serve_previous(number, known["metadata"]["name"])
            if served is not None:
                return served
            containers = known["spec"]["template"]["spec"]["containers"]
            result = await follow_existing(
                self.kube,
                known["metadata"]["name"],
                self._explaining(containers[0].get("image", "")),
                self.settings.rollout_timeout,
                self._start_tail,
            )
            if result is not None:
                return await self._finish(number, result, None, None)
            name = known["metadata"]["name"]
            self.emit(events.Warning(f"in the cluster: deployment {name} was deleted"))
            self.dispatch(ws.DeploymentLost())
        t0 = time.perf_counter()
        rendered = await asyncio.to_thread(render, self.settings.directory, self.settings.render)
        if not isinstance(rendered, Bundle):
            self.emit(events.RenderFailed(tuple(rendered)))
            self.emit(events.CycleFinished(number, "invalid"))
            self._set_state(
                "error", f"{sum(p.is_error for p in rendered)} problem(s) in the workflow"
            )
            return "invalid"
        bundle = rendered
        self._note_name(bundle.workflow.name)
        self.emit(
            events.Rendered(
                bundle.content_hash,
                bundle.code_bytes,
                files_changed(self.deployed, bundle),
                (time.perf_counter() - t0) * 1000,
                bundle.warnings,
                str(bundle.format),
            )
        )
        cycle = await deploy_cycle(
            self.kube,
            bundle,
            self._explaining(bundle.image.image),
            self.stamps,
            force_restart=force,
            rollout_timeout=self.settings.rollout_timeout,
            on_pod_started=self._start_tail,
            edited_at=edit_time,
        )
        return await self._finish(number, cycle, bundle, edit_time)

    async def _serve_previous(self, number: int, name: str) -> str | None:
        """After a failed rollout the previous ReplicaSet serves; when its pod is replaced
        (deleted, evicted, drained), the replacement is found and followed, rather than the
        failed rollout again. None when this is not that case."""
        if not ws.serves_previous(self.state, self.state.failed_hash):
            return None
        live = await informers.of(self.kube).get("Deployment", name)
        if live is None or not ws.serves_previous(self.state, plan.template_hash(live)):
            return None
        replica_set = self.state.serving.rsplit("-", 1)[0]
        template_hash = replica_set.removeprefix(f"{name}-")
        labels = live["spec"]["selector"].get("matchLabels") or {}
        old = self.state.serving
        pod = await ready_pod(self.kube, labels, template_hash, self.settings.rollout_timeout)
        if pod is None:
            failure = events.RolloutFailed(
                "",
                "Timeout",
                f"no pod of ReplicaSet {replica_set} (the one that served) became Ready after "
                f"{self.settings.rollout_timeout:g}s, and the new rollout had failed",
            )
            self.emit(failure)
            self.emit(events.CycleFinished(number, "failed"))
            self._set_state("error", "no pod serves the workflow")
            return "failed"
        if pod != old:
            self.emit(
                events.Warning(
                    f"pod {old} was replaced by {pod}: the same ReplicaSet, the code that "
                    "served before the failed rollout"
                )
            )
        self.dispatch(ws.Serving(pod))
        self._start_tail(pod)
        await self._stop_tails(keep=pod)
        self.emit(events.CycleFinished(number, "unchanged"))
        self._set_state("error", "the new pod failed; the previous one keeps running")
        return "unchanged"

    def _note_name(self, name: str) -> None:
        """A workflow renamed (`name:`) while pdwatch runs leaves the old name's deploy in
        the cluster: said once, and --cleanup-on-exit removes it too."""
        old = ws.renamed_from(self.state, name)
        self.dispatch(ws.Named(name))
        if old is not None:
            self.emit(
                events.Warning(
                    f"the workflow is now named {name!r}: the deploy of {old!r} stays in the "
                    f"cluster, orphaned (--cleanup-on-exit removes it at quit; or rename it "
                    f"back and run pdwatch DIR --down)"
                )
            )

    async def _roll_back(self, number: int, revision_number: int) -> str:
        """A recorded revision's code back live (one rollout), the local files untouched."""
        name = self.deployed.workflow.name if self.deployed else ""
        revisions = await kube_history.load(self.kube, name) if name else []
        revision = next((r for r in revisions if r.number == revision_number), None)
        if revision is None:
            self.emit(events.Error(unknown_revision(revision_number, revisions)))
            self.emit(events.CycleFinished(number, "failed"))
            self._set_state("watching")
            return "failed"
        built = await asyncio.to_thread(
            revision_bundle, self.settings.directory, revision, self.settings.render
        )
        if not isinstance(built, Bundle):
            self.emit(events.RenderFailed(tuple(built)))
            self.emit(events.CycleFinished(number, "invalid"))
            self._set_state("error", f"revision {revision_number} could not be rendered")
            return "invalid"
        cycle = await deploy_cycle(
            self.kube,
            built,
            self._explaining(built.image.image),
            self.stamps,
            force_restart=True,
            rollout_timeout=self.settings.rollout_timeout,
            on_pod_started=self._start_tail,
        )
        outcome = await self._finish(number, cycle, built, None, record=False)
        if outcome != "failed":
            local = await asyncio.to_thread(render, self.settings.directory, self.settings.render)
            if not isinstance(local, Bundle) or local.content_hash != built.content_hash:
                self._set_state(
                    "watching",
                    f"revision {revision_number} is live; the local files differ (a save "
                    "deploys them)",
                )
        return outcome

    def _explaining(self, image: str) -> Emit:
        """self.emit, with what a failure means and what to do after each failure."""
        situation = Situation(
            self.settings.context, image, self.kube.namespace, self.settings.render.runtime_class
        )
        return explaining(self._noting_progress, situation)

    def _noting_progress(self, event: events.Event) -> None:
        """The rollout's steps, into the state. The pod a rollout found Ready serves from
        that moment: the URL and `t` go to it before "Ready" is shown, not when the cycle
        has finished its bookkeeping."""
        match event:
            case events.PodProgress(pod=pod, step=step, detail=detail):
                self.dispatch(ws.RolloutStepped(pod, step, detail))
            case events.PodReady(pod=pod):
                self.dispatch(ws.Serving(pod))
                self.dispatch(ws.RolloutStepped(pod, "ready"))
            case events.RolloutFailed(pod=pod, reason=reason):
                self.dispatch(ws.RolloutStepped(pod, "failed", reason))
        self.emit(event)

    async def _finish(
        self,
        number: int,
        cycle: CycleResult,
        bundle: Bundle | None,
        edit_time: float | None,
        record: bool = True,
    ) -> str:
        outcome = ws.outcome_of(cycle)
        rollout = cycle.rollout
        pod = rollout.pod if rollout is not None else cycle.serving
        self.dispatch(ws.CycleEnded(outcome, cycle.deployment, bundle, pod))
        edit_to_ready = None
        if outcome == "ready":
            await self._stop_tails(keep=pod)
            if edit_time is not None:
                edit_to_ready = (time.time() - edit_time) * 1000
        elif rollout is None and pod:
            self._start_tail(pod)
            await self._stop_tails(keep=pod)
        self.emit(events.CycleFinished(number, outcome, edit_to_ready))
        if record and bundle is not None and ws.records(outcome):
            self.to_record.put_nowait(bundle)
        self._set_state(*ws.status_after(outcome))
        if outcome == "superseded" and rollout is not None:
            # Follow what replaced it: the Deployment as this cycle left it is older than the
            # one now in the cluster, and the monitor's next event asks for a cycle.
            self._request(set(), f"changed by {rollout.superseded_by}", follow_only=True)
        return outcome

    async def _record_history(self) -> None:
        """The deploy history, beside the cycles and in their order: recording never
        delays the next deploy (a slow cluster would hold it), and a failure to record
        is a warning."""
        while True:
            bundle = await self.to_record.get()
            try:
                done = await kube_history.record(self.kube, bundle, self.settings.history_limit)
                if done.create is not None:
                    annotations = done.create["metadata"]["annotations"]
                    self.emit(events.Recorded(int(annotations[REVISION_ANNOTATION])))
            except KubeError as exc:
                self.emit(events.Warning(f"the deploy history was not updated: {exc}"))

    async def _recreate_namespace(self, exc: KubeError) -> bool:
        """A namespace deleted behind pdwatch is created again, with --create-namespace."""
        namespace = self.settings.render.namespace
        if not self.settings.create_namespace or exc.subject != ("namespaces", namespace):
            return False
        try:
            if not await self.kube.namespace_exists(namespace):
                await self.kube.create_namespace(namespace)
                self.emit(events.Warning(f"namespace {namespace} was missing; created it again"))
        except KubeError as err:
            self.emit(events.Warning(f"could not create namespace {namespace}: {err}"))
            return False
        return True

    # --- the cluster while idle ----------------------------------------------------------------

    async def _ensure_monitor(self) -> None:
        """One monitor for the whole session (starting one per cycle would cost the hot
        path its watches), on the Deployment the last cycle left."""
        known = self.state.known
        name = known["metadata"]["name"] if known is not None else ""
        if name == self.monitored and self.monitor is not None and not self.monitor.done():
            return
        await self._stop_monitor()
        if name and not self.stopping.is_set():
            assert known is not None
            self.monitored = name
            self.monitor = self._supervised("the idle monitor", lambda: self._monitor(known))

    async def _stop_monitor(self) -> None:
        if self.monitor is not None:
            await finish(self.monitor, QUIT_GRACE_S)
            self.monitor = None
        self.monitored = ""

    async def _monitor(self, deployment: dict[str, Any]) -> None:
        """Watch the Deployment and its pods for the whole session; while no cycle runs,
        what someone else changed asks for one (cluster_change)."""
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["selector"]["matchLabels"]
        shared = informers.of(self.kube)
        merged: asyncio.Queue[tuple[str, str, dict[str, Any]] | KubeError] = asyncio.Queue()

        async def pump(kind: str, wants: Callable[[dict[str, Any]], bool]) -> None:
            try:
                changes = await shared.informer(kind).subscribe(wants)
            except KubeError as exc:  # a refused watch: the monitor fails, said and restarted
                merged.put_nowait(exc)
                return
            try:
                async for event, obj in changes:
                    merged.put_nowait((kind, event, obj))
            except KubeError as exc:
                merged.put_nowait(exc)
            finally:
                changes.close()

        pumps = [
            asyncio.create_task(pump("Deployment", lambda o: o["metadata"]["name"] == name)),
            asyncio.create_task(pump("Pod", lambda o: informers.carries(o, labels))),
        ]
        try:
            while True:
                item = await merged.get()
                if isinstance(item, KubeError):
                    raise item
                source, event, obj = item
                change = ws.seen_while_idle(self.state, source, event, obj)
                if change is None:
                    continue
                self.emit(events.Warning(f"in the cluster: {change.why}"))
                self._request(set(), change.why, follow_only=not change.redeploy)
        finally:
            for task in pumps:
                await finish(task, QUIT_GRACE_S)

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
