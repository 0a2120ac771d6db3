"""How the embedded cluster behaves: delays (short by default, zero for benchmarks),
back-offs, and which images behave how."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_IMAGE = "pipedreamer-engine:latest"
TENTACULAR_IMAGE = "tentacular-engine:latest"  # the Tentacular format's default
CURL_IMAGE = "curlimages/curl:latest"  # what cron triggers run


@dataclass
class ImageBehaviour:
    """How an image behaves. `ready=False`: its /health answers 503 (readiness fails).
    Any image not listed runs the engine: there is no registry to miss it (see
    kubelet.pullable for the images that cannot be pulled)."""

    ready: bool = True
    program: str = "engine"  # or "curl": runs its command once and exits (cron triggers)
    oom_killed: bool = False  # the engine starts, then is killed for its memory
    exit_code: int | None = None  # not the engine: its entrypoint exits at once, silent


@dataclass
class SimSettings:
    """Delays of simulated work are short (a pod here starts in tens of milliseconds, a
    real one in a second or more). Back-offs and periods are the real ones by default
    (the embedded cluster is also what a new user tries), multiplied by `time_scale`:
    tests shorten them without changing their shape."""

    schedule_delay: float = 0.01  # pod created → bound to the node
    mount_delay: float = 0.03  # volumes set up (ContainerCreating)
    pull_delay: float = 0.03  # an image pull
    start_delay: float = 0.05  # container started → engine listening (→ Ready)
    stop_delay: float = 0.03  # SIGTERM → container gone
    # kubelet (pkg/kubelet/kubelet.go: backOffPeriod 10 s, MaxContainerBackOff 300 s; the
    # back-off is reset after a container ran 10 minutes)
    crash_backoff: float = 10.0
    crash_backoff_max: float = 300.0
    crash_backoff_reset: float = 600.0
    pull_backoff: float = 10.0  # image pulls back off the same way (imageBackOff)
    pull_backoff_max: float = 300.0
    # volume manager: a failed mount is retried with an exponential back-off from 500 ms
    # (nestedpendingoperations: initialDurationBeforeRetry), at most 2 min 2 s
    mount_retry: float = 0.5
    mount_retry_max: float = 122.0
    # a running pod's mounted ConfigMap follows the object after the kubelet's sync
    # (syncFrequency 1 min plus its cache's TTL): seen by a restarted container
    configmap_sync: float = 60.0
    # deployment controller: progressDeadlineSeconds is checked against this clock
    time_scale: float = 1.0
    images: dict[str, ImageBehaviour] = field(
        default_factory=lambda: {
            DEFAULT_IMAGE: ImageBehaviour(),
            TENTACULAR_IMAGE: ImageBehaviour(),
            CURL_IMAGE: ImageBehaviour(program="curl"),
        }
    )
    unpullable: set[str] = field(default_factory=set)  # images no registry has
    # registry hosts that answer an anonymous pull with "authorization failed"; a pod
    # pulls from them only with an imagePullSecrets entry naming an existing Secret
    private_registries: set[str] = field(default_factory=set)
    # registry hosts that answer every pull with a server error (500)
    failing_registries: set[str] = field(default_factory=set)
    # the ServiceAccount controller: how long a new namespace waits for its `default`
    service_account_delay: float = 0.0
    cron_tick: float = 1.0  # how often the CronJob controller looks at its schedules
    # the API server's --event-ttl: an Event goes this long after it was last written (a
    # real period, not scaled: a demo machine left running must not fill up with Events)
    event_ttl: float = 3600.0
    clock: Callable[[], float] = time.time  # the CronJob controller's wall clock
    # What runs the engine's image: "deno" (the stand-in engine, engine-image/main.ts, as a
    # real Deno process) or "simulated" (devloop.sim.engine, in this process). Deno is a
    # dependency; "simulated" is for a machine where its binary cannot run.
    engine: str = field(default_factory=lambda: os.environ.get("PDWATCH_NODE_ENGINE", "deno"))

    def scaled(self, seconds: float) -> float:
        """A real back-off or period, as this cluster waits it."""
        return seconds * self.time_scale

    @classmethod
    def instant(cls) -> SimSettings:
        """No simulated delays, so benchmarks see pdwatch's own cost."""
        return cls(schedule_delay=0, mount_delay=0, pull_delay=0, start_delay=0, stop_delay=0)

    @classmethod
    def for_tests(cls) -> SimSettings:
        """Back-offs and periods at a twentieth: a 10 s back-off takes 0.5 s."""
        return cls(time_scale=0.05)
