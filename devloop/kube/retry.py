"""The one retry policy of pdwatch's cluster layer: exponential back-off, capped, with
jitter so that several clients do not retry in step, and never sooner than the API server
asked (`Retry-After`, which it sends with 429 when API Priority and Fairness throttles and
with 503 while it starts or stops)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

MAX_RETRY_AFTER_S = 60.0  # a server asking for longer is waited for this long, then asked again


def delay(
    attempt: int,
    initial: float,
    cap: float,
    retry_after: float | None = None,
    jitter: Callable[[float, float], float] = random.uniform,
) -> float:
    """How long to wait before try `attempt` + 1 (attempt counts from 1): initial·2^(n-1)
    up to `cap`, ±20 %; at least what the server asked for."""
    base = min(cap, initial * 2.0 ** (attempt - 1)) * jitter(0.8, 1.2)
    return max(base, min(retry_after or 0.0, MAX_RETRY_AFTER_S))


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """The seconds of a `Retry-After` header (the API server sends whole seconds; an
    HTTP date, which it does not send, is not read), or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    try:
        seconds = float(str(value).strip()) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None
