"""Events as the kubelet's recorder writes them (client-go tools/record): each event is
first aggregated (more than 10 distinct messages of one reason about one object within 10
minutes become `(combined from similar events): …`), then de-duplicated (a repeat counts up
the existing Event with a PATCH), then spam-filtered (a token bucket per source, object and
type: a burst of 25, then one every 5 minutes). Dropped events are never written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devloop.node.rest import STRATEGIC_PATCH, ApiStatus, Rest

BURST = 25
REFILL_SECONDS = 300.0  # qps 1/300
AGGREGATE_MAX = 10
AGGREGATE_WINDOW = 600.0
COMBINED = "(combined from similar events): "


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Aggregate:
    messages: set[str] = field(default_factory=set)
    first: float = 0.0


@dataclass
class EventRecorder:
    rest: Rest
    component: str
    host: str
    clock: Callable[[], float] = time.time
    _buckets: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)
    _aggregates: dict[tuple[str, ...], _Aggregate] = field(default_factory=dict)
    _written: dict[tuple[str, ...], tuple[str, int]] = field(default_factory=dict)
    dropped: int = 0

    def _allowed(self, key: tuple[str, ...], now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(BURST), now)
        bucket.tokens = min(float(BURST), bucket.tokens + (now - bucket.at) / REFILL_SECONDS)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def _aggregate(self, key: tuple[str, ...], message: str, now: float) -> str:
        entry = self._aggregates.get(key)
        if entry is None or now - entry.first > AGGREGATE_WINDOW:
            entry = self._aggregates[key] = _Aggregate(first=now)
        entry.messages.add(message)
        return COMBINED + message if len(entry.messages) >= AGGREGATE_MAX else message

    async def record(
        self,
        involved: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        field_path: str = "",
    ) -> None:
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        obj = (
            involved.get("kind", ""),
            namespace,
            meta.get("name", ""),
            meta.get("uid", ""),
            involved.get("apiVersion", ""),
        )
        now = self.clock()
        source = (self.component, self.host)
        message = self._aggregate((*source, *obj, type_, reason), message, now)
        if not self._allowed((*source, *obj, type_), now):
            self.dropped += 1
            return
        same = (*source, *obj, field_path, type_, reason, message)
        earlier = self._written.get(same)
        path = f"/api/v1/namespaces/{namespace}/events"
        try:
            if earlier is not None:
                name, count = earlier
                await self.rest.request(
                    "PATCH",
                    f"{path}/{name}",
                    {"count": count + 1, "lastTimestamp": rfc3339(now)},
                    content_type=STRATEGIC_PATCH,
                )
                self._written[same] = (name, count + 1)
                return
            name = f"{meta.get('name')}.{time.time_ns():x}"
            reference: dict[str, Any] = {
                "kind": obj[0],
                "namespace": namespace,
                "name": obj[2],
                "uid": obj[3],
                "apiVersion": obj[4],
                "resourceVersion": meta.get("resourceVersion", ""),
            }
            if field_path:
                reference["fieldPath"] = field_path
            await self.rest.request(
                "POST",
                path,
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": reference,
                    "reason": reason,
                    "message": message,
                    "source": {"component": self.component, "host": self.host},
                    "firstTimestamp": rfc3339(now),
                    "lastTimestamp": rfc3339(now),
                    "count": 1,
                    "type": type_,
                    "reportingComponent": self.component,
                    "reportingInstance": self.host,
                },
            )
            self._written[same] = (name, 1)
            if len(self._written) > 4096:  # client-go's LRU holds 4096 keys
                self._written.pop(next(iter(self._written)))
        except ApiStatus:
            pass  # as client-go: an event that cannot be written is given up
        except OSError:
            pass
