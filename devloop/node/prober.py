"""The kubelet's prober for one container run (pkg/kubelet/prober/worker.go), against a
process that really listens: readiness and liveness each on its own schedule, the first
after initialDelaySeconds, then every periodSeconds, a failure worded as DoHTTPProbe
words it. Shared by pdwatch's node and the embedded cluster's kubelet; what differs
between them (how status and events are written, whose clock schedules) comes in as
callables.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

CODE_PORT = 8080
PROBES = (("Readiness", "readinessProbe"), ("Liveness", "livenessProbe"))
# pkg/kubelet/kubelet.go genericPlegRelistPeriod: how often the kubelet lists its
# containers to notice one that started.
PLEG_RELIST_PERIOD = 1.0


def until_relist(since_start: float) -> float:
    """Seconds from now to the kubelet's next relist, `since_start` seconds after the
    kubelet's own start (relists tick from there)."""
    return PLEG_RELIST_PERIOD - since_start % PLEG_RELIST_PERIOD


def next_relist(started: float, time_scale: float) -> float:
    """Pod-seconds to the next relist of a kubelet started at `started` (monotonic) whose
    clock runs `time_scale` times real time (0: everything at once)."""
    if not time_scale:
        return 0.0
    return until_relist((time.monotonic() - started) / time_scale)


async def http_probe(
    session: aiohttp.ClientSession, address: str, probe: dict[str, Any]
) -> str | None:
    """None when the probe succeeds, else DoHTTPProbe's words for the failure."""
    get = probe.get("httpGet")
    if get is None:
        return None  # exec and tcpSocket probes: the node runs no such commands
    port, path = get.get("port", CODE_PORT), get.get("path", "/")
    url = f"http://{address}:{port}{path}"
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            await response.read()
            if 200 <= response.status < 400:
                return None
            return f"HTTP probe failed with statuscode: {response.status}"
    except TimeoutError:
        return (
            f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
            "awaiting headers)"
        )
    except aiohttp.ClientConnectorError:
        return f'Get "{url}": dial tcp {address}:{port}: connect: connection refused'
    except aiohttp.ClientError as exc:
        return f'Get "{url}": {exc}'


def first_probe(probe: dict[str, Any]) -> float:
    """Seconds from the container's start to its first liveness probe. The kubelet's
    worker ticks every periodSeconds from when the pod was added (before its container
    runs); a tick before the container runs, or before initialDelaySeconds, probes nothing
    (worker.go doProbe). So the first probe is at the first tick at or after the initial
    delay, never at the start itself, when no engine listens yet."""
    period = float(probe.get("periodSeconds", 10))
    delay = float(probe.get("initialDelaySeconds", 0))
    return period * max(1, math.ceil(delay / period))


def first_readiness_probe(probe: dict[str, Any], noticed: float) -> float:
    """Seconds from the container's start to its first readiness probe. The relist that
    notices the container running (`noticed` seconds after its start) syncs the pod, and
    the pod's status update asks the readiness worker for an immediate run while the
    container is not yet ready (prober_manager.go UpdatePodStatus, manualTriggerCh); the
    worker skips a run before initialDelaySeconds (whole seconds since the start:
    worker.go doProbe) and restarts its ticker at the manual run."""
    period = float(probe.get("periodSeconds", 10))
    delay = int(probe.get("initialDelaySeconds", 0))
    at = noticed
    while int(at) < delay:
        at += period
    return at


async def probe_container(
    container: dict[str, Any],
    address: str,
    session: aiohttp.ClientSession,
    *,
    noticed: float,
    sleep: Callable[[float], Awaitable[None]],
    set_ready: Callable[[bool], Awaitable[None]],
    event: Callable[[str, str, str], Awaitable[None]],
) -> None:
    """Probe until liveness fails failureThreshold times in a row (then return: the
    container is to be restarted). `noticed`: seconds from the container's start to the
    relist that notices it (`until_relist`). `sleep(seconds)` waits on the pod's schedule,
    `set_ready(ready)` writes the Ready condition, `event(type, reason, message)` records
    an event. A container without a readiness probe is ready once running; one without
    probes is never restarted by the prober."""
    cname = container["name"]
    probes = {name: container[key] for name, key in PROBES if container.get(key)}
    if "Readiness" not in probes:
        await set_ready(True)
    if not probes:  # nothing will restart it
        await asyncio.Event().wait()
    due = {
        n: first_readiness_probe(p, noticed) if n == "Readiness" else first_probe(p)
        for n, p in probes.items()
    }
    failures = {n: 0 for n in probes}
    successes = {n: 0 for n in probes}
    ready = False
    clock = 0.0
    while True:
        name = min(due, key=lambda n: due[n])
        await sleep(due[name] - clock)
        clock = due[name]
        probe = probes[name]
        due[name] += float(probe.get("periodSeconds", 10))
        why = await http_probe(session, address, probe)
        if why is None:
            failures[name] = 0
            successes[name] += 1
            if (
                name == "Readiness"
                and not ready
                and successes[name] >= int(probe.get("successThreshold", 1))
            ):
                ready = True
                await set_ready(True)
            continue
        successes[name] = 0
        failures[name] += 1
        await event("Warning", "Unhealthy", f"{name} probe failed: {why}")
        threshold = int(probe.get("failureThreshold", 3))
        if name == "Readiness" and ready and failures[name] >= threshold:
            ready = False
            await set_ready(False)
        if name == "Liveness" and failures[name] >= threshold:
            await event(
                "Normal", "Killing", f"Container {cname} failed liveness probe, will be restarted"
            )
            return
