"""Tail a pod's logs from its very first line until told to stop.

The first request has no tailLines/sinceSeconds, so nothing printed between the
container's start and the attach is lost. A dropped stream is reopened; the lines
already delivered for the same container run are skipped, so nothing is duplicated.
When the container restarts, the new run is followed from its first line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from devloop import events
from devloop.kube.client import Kube, LineStream
from devloop.kube.errors import KubeError, NotFound
from devloop.waits import event_or_timeout

Emit = Callable[[events.Event], None]


async def tail_logs(
    kube: Kube, pod: str, emit: Emit, stop: asyncio.Event, retry_s: float = 0.2
) -> None:
    delivered = 0
    run = -1  # the container's restartCount when these lines were read
    backoff = retry_s
    while not stop.is_set():
        current = await _restart_count(kube, pod)
        if current is None:
            return  # the pod is gone
        if current != run:
            if current > max(run, 0):  # the container restarted (or had before we came)
                emit(events.PodProgress(pod, "restarted", f"{current} restart(s)"))
            run, delivered = current, 0
        stream = kube.follow_log(pod)
        stopper = asyncio.create_task(stop.wait())
        stopper.add_done_callback(_closer(stream))  # ends the iteration below
        try:
            index = 0
            async for line in stream:
                index += 1
                if index > delivered:
                    delivered = index
                    emit(events.LogLine(pod, line))
            backoff = retry_s  # the stream ended: the container stopped or restarts
        except NotFound:
            return
        except KubeError:
            pass  # "waiting to start" (400) or a dropped stream: reopen, skip what was sent
        finally:
            stopper.cancel()
            stream.close()
        if stop.is_set():
            return
        await event_or_timeout(stop, backoff)
        backoff = min(backoff * 2, 2.0)


def _closer(stream: LineStream) -> Callable[[object], None]:
    return lambda _: stream.close()


async def _restart_count(kube: Kube, pod: str) -> int | None:
    """The container's restart count, None when the pod is gone."""
    obj = await kube.get("Pod", pod)
    if obj is None:
        return None
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return int(statuses[0].get("restartCount", 0)) if statuses else 0
