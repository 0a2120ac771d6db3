"""How the embedded cluster behaves: delays (short by default, zero for benchmarks),
back-offs, and which images exist and how they behave."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_IMAGE = "pipedreamer-engine:latest"
CURL_IMAGE = "curlimages/curl:latest"  # what cron triggers run


@dataclass
class ImageBehaviour:
    """An image the node can run. `ready=False`: its /health answers 503 (readiness fails)."""

    ready: bool = True
    program: str = "engine"  # or "curl": runs its command once and exits (cron triggers)


@dataclass
class SimSettings:
    schedule_delay: float = 0.01  # pod created → bound to the node
    mount_delay: float = 0.03  # volumes set up (ContainerCreating)
    pull_delay: float = 0.03  # an image pull
    start_delay: float = 0.05  # container started → engine listening (→ Ready)
    stop_delay: float = 0.03  # SIGTERM → container gone
    crash_backoff: float = 0.5  # first CrashLoopBackOff delay (10 s on a real kubelet)
    crash_backoff_max: float = 4.0  # cap (5 min on a real kubelet)
    pull_backoff: float = 0.5  # first ImagePullBackOff delay
    mount_retry: float = 0.3  # FailedMount retry period
    probe_period_cap: float = 0.5  # readiness failures are reported at most this far apart
    images: dict[str, ImageBehaviour] = field(
        default_factory=lambda: {
            DEFAULT_IMAGE: ImageBehaviour(),
            CURL_IMAGE: ImageBehaviour(program="curl"),
        }
    )
    cron_tick: float = 1.0  # how often the CronJob controller looks at its schedules
    clock: Callable[[], float] = time.time  # the CronJob controller's wall clock

    @classmethod
    def instant(cls) -> SimSettings:
        """No simulated delays, so benchmarks see pdwatch's own cost."""
        return cls(schedule_delay=0, mount_delay=0, pull_delay=0, start_delay=0, stop_delay=0)
