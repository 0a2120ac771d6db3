"""Tail a pod's logs from its very first line until told to stop.

The first request has no tailLines/sinceSeconds, so nothing printed between the
container's start and the attach is lost. A dropped stream is reopened; the lines
already delivered for the same container run are skipped, so nothing is duplicated.
When the container restarts, the new run is followed from its first line.

Lines are asked for with their timestamps, and what was delivered is remembered as the
last timestamp and how many lines carried it: counting lines instead, a reopened stream
that starts later than before (the kubelet rotated the log file meanwhile, and serves only
the new one) had its first lines taken for ones already shown, silently. A reopened
stream that no longer holds the last line shown says that lines may be missing.
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from devloop import events
from devloop.kube import retry
from devloop.kube.client import Kube, LineStream
from devloop.kube.errors import KubeError, NotFound
from devloop.waits import event_or_timeout

Emit = Callable[[events.Event], None]


Stamp = tuple[int, int]  # (seconds since the epoch, nanoseconds)


@dataclass
class Delivered:
    """What of one container run has been shown: the last line's timestamp and how many
    lines carried that very timestamp."""

    last: Stamp | None = None
    at_last: int = 0

    def admit(self, stamp: Stamp | None, seen_at: int) -> bool:
        """Whether a line is new; `seen_at` counts the lines with its timestamp so far in
        this stream (itself included)."""
        if stamp is None or self.last is None or stamp > self.last:
            return True
        return stamp == self.last and seen_at > self.at_last

    def shown(self, stamp: Stamp | None) -> None:
        if stamp is not None and stamp == self.last:
            self.at_last += 1
        else:
            self.last, self.at_last = stamp, 1


def split_stamp(line: str) -> tuple[Stamp | None, str]:
    """A `timestamps=true` line: its RFC 3339 timestamp (nanoseconds, trailing zeros
    trimmed as Go prints them) and its text."""
    head, sep, text = line.partition(" ")
    if not sep or not head.endswith("Z"):
        return None, line
    whole, _, fraction = head[:-1].partition(".")
    try:
        nanos = int((fraction + "000000000")[:9]) if fraction else 0
        return (_epoch(whole), nanos), text
    except ValueError:
        return None, line


@functools.lru_cache(maxsize=16)
def _epoch(whole: str) -> int:
    """Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS`: a flood of lines shares a few
    seconds, so strptime runs a few times, not once a line."""
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))


async def tail_logs(
    kube: Kube, pod: str, emit: Emit, stop: asyncio.Event, retry_s: float = 0.2
) -> None:
    delivered = Delivered()
    run = -1  # the container's restartCount when these lines were read
    failures = 0  # reopened in a row without a stream that ended by itself
    asked: float | None = None  # the server's Retry-After, if it gave one
    while not stop.is_set():
        current = await _restart_count(kube, pod)
        if current is None:
            return  # the pod is gone
        if current != run:
            if current > max(run, 0):  # the container restarted (or had before we came)
                emit(events.PodProgress(pod, "restarted", f"{current} restart(s)"))
            run, delivered = current, Delivered()
        stream = kube.follow_log(pod, timestamps=True)
        stopper = asyncio.create_task(stop.wait())
        stopper.add_done_callback(_closer(stream))  # ends the iteration below
        resumed = delivered.last is not None
        try:
            previous: Stamp | None = None
            same = 0  # lines in a row with this stamp (a log's stamps never go back)
            async for line in stream:
                stamp, text = split_stamp(line)
                same = same + 1 if stamp == previous else 1
                previous = stamp
                if resumed:
                    resumed = False
                    last = delivered.last
                    if stamp is not None and last is not None and stamp > last:
                        emit(
                            events.Warning(
                                f"the log of pod {pod} was rotated while it was not followed: "
                                "lines written meanwhile may be missing here (kubectl logs "
                                "shows the current file only, too)"
                            )
                        )
                if delivered.admit(stamp, same):
                    delivered.shown(stamp)
                    emit(events.LogLine(pod, text))
            failures, asked = 0, None  # the stream ended: the container stopped or restarts
        except NotFound:
            return
        except KubeError as exc:
            # "waiting to start" (400) or a dropped stream: reopen, skip what was sent
            asked = exc.retry_after
        finally:
            stopper.cancel()
            stream.close()
        if stop.is_set():
            return
        failures += 1
        await event_or_timeout(stop, retry.delay(failures, retry_s, 2.0, asked))


def _closer(stream: LineStream) -> Callable[[object], None]:
    return lambda _: stream.close()


async def _restart_count(kube: Kube, pod: str) -> int | None:
    """The container's restart count, None when the pod is gone."""
    obj = await kube.get("Pod", pod)  # fresh: a restart is told by its count
    if obj is None:
        return None
    statuses = (obj.get("status") or {}).get("containerStatuses") or []
    return int(statuses[0].get("restartCount", 0)) if statuses else 0
