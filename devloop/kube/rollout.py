"""Follow the rollout a deploy cycle started, by watching (not polling) until the new pod
is Ready or fails with the cluster's own reason.

The new ReplicaSet is the one owned by the Deployment whose pod template equals the
Deployment's current template (ignoring `pod-template-hash`), as kubectl identifies it;
its pods carry its hash, so an old pod is never mistaken for the new one.

This module is the I/O: the watches, the clock, a crashed container's last log lines.
What each thing seen means, and what counts as failed, is decided by kube/progress.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from devloop import events
from devloop.kube import informers
from devloop.kube import progress as rollout_progress
from devloop.kube.client import Kube
from devloop.kube.errors import KubeError, Vanished
from devloop.kube.progress import (
    Clock,
    Crashed,
    Done,
    Gone,
    RolloutResult,
    Seen,
    Started,
    is_new_replica_set,
    is_ready,
)
from devloop.waits import within

Emit = Callable[[events.Event], None]
LAST_LOG_LINES = 20


class RolloutWatch:
    """What a rollout is followed with: the Deployment, its ReplicaSets and pods, and the
    namespace's new events, from the session's shared watches (informers.py), merged into
    one stream.

    Opened before the change that starts the rollout, so the new ReplicaSet and its pod are
    seen as they appear; opening it sends no request (the watches are the session's). The
    objects already known come first, as a list would give them; events start from now.
    Close it with `close()`.
    """

    def __init__(self, kube: Kube, deployment: str, match_labels: dict[str, str]) -> None:
        shared = informers.of(kube)

        def selected(obj: dict[str, Any]) -> bool:
            return informers.carries(obj, match_labels)

        sources = {
            "deployment": (
                shared.informer("Deployment"),
                lambda obj: obj["metadata"].get("name") == deployment,
                True,
            ),
            "rs": (shared.informer("ReplicaSet"), selected, True),
            "pod": (shared.informer("Pod"), selected, True),
            "event": (shared.informer("Event"), lambda _: True, False),
        }
        self.queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | BaseException] = asyncio.Queue()
        self.subscriptions: list[informers.Subscription] = []
        self.tasks = [
            asyncio.create_task(self._pump(tag, *source)) for tag, source in sources.items()
        ]

    async def _pump(
        self,
        tag: str,
        informer: informers.Informer,
        wants: Callable[[dict[str, Any]], bool],
        replay: bool,
    ) -> None:
        try:
            subscription = await informer.subscribe(wants, replay)
            self.subscriptions.append(subscription)
            async for kind, obj in subscription:
                if kind != "SYNCED":
                    self.queue.put_nowait((tag, kind, obj))
        except BaseException as exc:  # surfaced to the consumer
            self.queue.put_nowait(exc)

    def __aiter__(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        return self._items()

    async def _items(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        while True:
            item = await self.queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(BaseException):
                await task
        for subscription in self.subscriptions:
            subscription.close()


async def serving_pod(kube: Kube, deployment: dict[str, Any]) -> str:
    """The Ready pod of the Deployment's newest ReplicaSet (what serves its template), or
    "" when there is none."""
    shared = informers.of(kube)
    selector = deployment["spec"]["selector"].get("matchLabels") or {}
    replica_sets = await shared.items("ReplicaSet", selector)
    newest = [rs for rs in replica_sets if is_new_replica_set(rs, deployment)]
    if not newest:
        return ""
    rs_hash = newest[0]["metadata"]["labels"].get("pod-template-hash", "")
    pods = await shared.items("Pod", {**selector, "pod-template-hash": rs_hash})
    ready = [p for p in pods if is_ready(p)]
    ready.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
    return str(ready[-1]["metadata"]["name"]) if ready else ""


async def ready_pod(
    kube: Kube, match_labels: dict[str, str], template_hash: str, timeout: float
) -> str | None:
    """A Ready pod (not being deleted) of the ReplicaSet with this pod-template-hash, as
    soon as there is one; None after `timeout` seconds."""
    labels = {**match_labels, "pod-template-hash": template_hash}

    async def first() -> str:
        pods = (
            await informers.of(kube)
            .informer("Pod")
            .subscribe(lambda pod: informers.carries(pod, labels))
        )
        try:
            async for kind, pod in pods:
                if kind not in ("DELETED", "SYNCED") and is_ready(pod):
                    return str(pod["metadata"]["name"])
        finally:
            pods.close()
        raise KubeError("the pod watch ended")  # a subscription never ends on its own

    try:
        return await within(first(), timeout)
    except TimeoutError:
        return None


async def follow_rollout(
    kube: Kube,
    deployment: dict[str, Any],
    emit: Emit,
    timeout: float = 120,
    started: float | None = None,
    on_started: Callable[[str], None] | None = None,
    edited_at: float | None = None,
    watch: RolloutWatch | None = None,
) -> RolloutResult:
    """Report the new pod's progress until Ready, a failure, or `timeout` seconds.
    `edited_at` (wall clock) is when the save that caused it happened, if known. `watch`,
    opened before the change, is used (not closed); without it one is opened here."""
    t0 = started if started is not None else time.monotonic()
    own = watch is None
    if watch is None:
        watch = RolloutWatch(
            kube,
            deployment["metadata"]["name"],
            deployment["spec"]["selector"].get("matchLabels") or {},
        )
    started_wall = time.time() - (time.monotonic() - t0)
    follower = _Follower(kube, emit, on_started, deployment, t0, started_wall, edited_at)
    try:
        return await within(follower.follow(watch), timeout)
    except TimeoutError:
        failure = rollout_progress.timed_out(follower.progress, timeout)
        emit(failure)
        return RolloutResult(False, failure=failure)
    finally:
        if own:
            await watch.close()


class _Follower:
    """Feeds what the watches show to kube/progress.py and carries out what follows."""

    def __init__(
        self,
        kube: Kube,
        emit: Emit,
        on_started: Callable[[str], None] | None,
        deployment: dict[str, Any],
        t0: float,
        started_wall: float,
        edited_at: float | None,
    ) -> None:
        self.kube = kube
        self.emit = emit
        self.on_started = on_started
        self.progress = rollout_progress.Progress(deployment, t0, started_wall, edited_at)

    async def follow(self, watch: RolloutWatch) -> RolloutResult:
        async for tag, kind, obj in watch:
            now = Clock(time.monotonic(), time.time())
            self.progress, outputs = rollout_progress.observe(
                self.progress, Seen(tag, kind, obj), now
            )
            for output in outputs:
                match output:
                    case Started(pod=pod):
                        if self.on_started is not None:
                            self.on_started(pod)
                    case Crashed():
                        return await self._crashed(output)
                    case Done(result=result):
                        return result
                    case Gone(message=message):
                        raise Vanished(message)
                    case _:
                        self.emit(output)
        raise KubeError("the rollout watch ended")

    async def _crashed(self, crash: Crashed) -> RolloutResult:
        """The failure, with the crashed container's last lines."""
        logs = await _last_logs(self.kube, crash.pod)
        failure = events.RolloutFailed(crash.pod, crash.reason, crash.message, logs)
        self.emit(failure)
        now = Clock(time.monotonic(), time.time())
        return RolloutResult(
            False, crash.pod, self.progress.rs_name, self.progress.ms(now), failure
        )


async def _last_logs(kube: Kube, pod: str) -> tuple[str, ...]:
    """The crashed container's last lines: the previous run's, else the current one's. A
    container the kubelet is restarting at that moment may have neither to give yet: asked
    again a few times, briefly."""
    for attempt in range(3):
        for previous in (True, False):
            try:
                text = await kube.pod_log(pod, previous=previous, tail_lines=LAST_LOG_LINES)
            except KubeError:
                continue
            if text.strip():
                return tuple(text.rstrip("\n").split("\n"))
        if attempt < 2:
            await asyncio.sleep(0.3)
    return ()
