"""Objects in memory, one global resourceVersion counter, and watch fan-out with history.

Runs on the embedded cluster's event loop only (no locks). A watch from resourceVersion N
receives every change after N; one older than the kept history gets 410 Expired, as a
compacted etcd gives.
"""

from __future__ import annotations

import asyncio
import builtins
import calendar
import copy
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devloop.sim.errors import ApiError, already_exists, gone, not_found
from devloop.sim.resources import Resource
from devloop.sim.selectors import Matcher

Key = tuple[str, str, str, str]  # group, plural, namespace, name


def rfc3339(t: float) -> str:
    """A timestamp as the API server writes them (whole seconds, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def now_rfc3339() -> str:
    return rfc3339(time.time())


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an API server timestamp (fractions ignored)."""
    return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))


def key_of(resource: Resource, namespace: str, name: str) -> Key:
    return (resource.group, resource.plural, namespace if resource.namespaced else "", name)


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    resource: Resource
    object: dict[str, Any]
    rv: int


@dataclass(eq=False)  # identity: watchers are kept in a set
class Watcher:
    resource: Resource
    namespace: str
    matches: Matcher
    queue: asyncio.Queue[WatchEvent | None] = field(default_factory=asyncio.Queue)

    def wants(self, event: WatchEvent) -> bool:
        if event.resource is not self.resource:
            return False
        meta = event.object.get("metadata", {})
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return self.matches(event.object)

    def close(self) -> None:
        self.queue.put_nowait(None)


class Store:
    def __init__(self, history: int = 20_000) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.rv = 0
        self.history: deque[WatchEvent] = deque(maxlen=history)
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[WatchEvent], None]] = []

    # --- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects.get(key_of(resource, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return copy.deepcopy(obj)

    def find(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(key_of(resource, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self, resource: Resource, namespace: str = "", matches: Matcher | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the matching objects, in key order. `matches` sees the stored objects
        (it must not change them), so only what matches is copied: controllers scan often."""
        found = [
            (key, obj)
            for key, obj in self.objects.items()
            if (key[0], key[1]) == (resource.group, resource.plural)
            and not (namespace and resource.namespaced and key[2] != namespace)
            and (matches is None or matches(obj))
        ]
        found.sort(key=lambda item: item[0])
        return [copy.deepcopy(obj) for _, obj in found]

    def page(
        self,
        resource: Resource,
        namespace: str,
        matches: Matcher | None,
        limit: int,
        after: tuple[str, ...] | None,
    ) -> tuple[builtins.list[dict[str, Any]], int, tuple[str, ...] | None]:
        """One page of a chunked list (`limit`, `continue`): copies of at most `limit`
        matching objects after the key `after`, how many remain, and the last key given."""
        keys = sorted(
            key
            for key, obj in self.objects.items()
            if (key[0], key[1]) == (resource.group, resource.plural)
            and not (namespace and resource.namespaced and key[2] != namespace)
            and (after is None or key > after)
            and (matches is None or matches(obj))
        )
        taken = keys[:limit]
        last = taken[-1] if len(keys) > limit else None
        return [copy.deepcopy(self.objects[k]) for k in taken], len(keys) - len(taken), last

    # --- writes (the caller has validated) ---------------------------------------------------

    def create(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        key = key_of(resource, meta.get("namespace", ""), meta["name"])
        if key in self.objects:
            raise already_exists(resource, meta["name"])
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # the API may have set it
        meta["creationTimestamp"] = now_rfc3339()
        if resource.has_generation:
            meta["generation"] = 1
        return self._commit("ADDED", resource, key, obj)

    def replace(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = key_of(resource, meta.get("namespace", ""), meta["name"])
        if key not in self.objects:
            raise not_found(resource, meta["name"])
        return self._commit("MODIFIED", resource, key, obj)

    def delete(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        key = key_of(resource, namespace, name)
        obj = self.objects.pop(key, None)
        if obj is None:
            raise not_found(resource, name)
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(WatchEvent("DELETED", resource, obj, self.rv))
        return obj

    def _commit(
        self, kind: str, resource: Resource, key: Key, obj: dict[str, Any]
    ) -> dict[str, Any]:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        stored = copy.deepcopy(obj)
        self.objects[key] = stored
        self._emit(WatchEvent(kind, resource, copy.deepcopy(stored), self.rv))
        return obj

    def _emit(self, event: WatchEvent) -> None:
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    # --- watch -----------------------------------------------------------------------------

    def watch(
        self, resource: Resource, namespace: str, matches: Matcher, since: int | None
    ) -> Watcher:
        """A watcher that first receives the changes after `since` (None or 0: the current
        objects as ADDED), then every change as it happens."""
        watcher = Watcher(resource, namespace, matches)
        if not since:
            for obj in self.list(resource, namespace, matches):
                watcher.queue.put_nowait(
                    WatchEvent("ADDED", resource, obj, int(obj["metadata"]["resourceVersion"]))
                )
        else:
            if since > self.rv:  # e.g. a client that outlived a recreated cluster
                raise ApiError(
                    504,
                    "Timeout",
                    f"Too large resource version: {since}, current: {self.rv}",
                    {
                        "causes": [
                            {
                                "reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version",
                            }
                        ],
                        "retryAfterSeconds": 1,
                    },
                )
            oldest = self.history[0].rv if self.history else self.rv + 1
            if since < oldest - 1 and since < self.rv:
                raise gone(f"too old resource version: {since} ({oldest - 1})")
            for event in self.history:
                if event.rv > since and watcher.wants(event):
                    watcher.queue.put_nowait(event)
        self.watchers.add(watcher)
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def drop_all_watches(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()
        self.watchers.clear()
