"""Objects in memory, one global resourceVersion counter, and watch fan-out with history.

Runs on the embedded cluster's event loop only (no locks). A watch from resourceVersion N
receives every change after N; one older than the kept history gets 410 Expired, as a
compacted etcd gives.
"""

from __future__ import annotations

import asyncio
import bisect
import builtins
import calendar
import ctypes
import json
import pickle
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from devloop.sim.clone import clone
from devloop.sim.errors import ApiError, already_exists, gone, not_found, too_large
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


# etcd's default --max-request-bytes: a write of a larger value is refused. Counted here on
# the object as JSON with its managedFields (etcd holds the API server's protobuf, a little
# smaller: objects near the limit may be refused here and stored by a real cluster).
ETCD_MAX_REQUEST_BYTES = 1536 * 1024


def _over_etcd_limit(obj: dict[str, Any]) -> bool:
    if len(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)) < ETCD_MAX_REQUEST_BYTES // 2:
        return False  # most objects: no JSON encoding on every write
    encoded = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return len(encoded) > ETCD_MAX_REQUEST_BYTES


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    resource: Resource
    object: dict[str, Any]
    rv: int


@dataclass(frozen=True)
class Past:
    """A change kept in the watch history, its object serialised: the history is read
    only when a watch resumes from a resourceVersion, and tens of thousands of objects
    held as dicts made every full pass of Python's cyclic GC walk them (a 490 ms pause
    with 20,000 Events in the history, measured); bytes are not walked."""

    type: str
    resource: Resource
    rv: int
    uid: str
    data: bytes

    def event(self) -> WatchEvent:
        return WatchEvent(self.type, self.resource, pickle.loads(self.data), self.rv)


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


# Kinds kept serialised: written once, read only by lists and watches (no controller
# scans them), and numerous: 20,000 Events held as dicts were most of what each full pass
# of Python's cyclic GC walked (pauses of 200+ ms in the cluster's loop, measured).
COLD_KINDS = frozenset({"Event"})

HISTORY_EVENTS = 20_000
HISTORY_BYTES = 64 * 1024 * 1024
HISTORY_SECONDS = 300.0  # etcd's default compaction interval (--etcd-compaction-interval)
LARGE_HISTORY = 256 * 1024


def release_free_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise: after a large object's
    history is dropped the process stayed at its peak RSS). No-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.malloc_trim(0)


class Store:
    """The watch history is a window, as a compacted etcd's is: at most HISTORY_EVENTS
    events and HISTORY_BYTES of objects, none older than HISTORY_SECONDS; and when an
    object is deleted its earlier events go at once (their objects can be large: a 900 KB
    ConfigMap applied 40 times). A watch from before the window gets 410 Expired."""

    def __init__(self, history: int = HISTORY_EVENTS) -> None:
        # Events are kept serialised (COLD_KINDS); everything else as dicts
        self.objects: dict[Key, dict[str, Any] | bytes] = {}
        # owner uid → the objects whose ownerReferences name it (the garbage collector's
        # graph, pkg/controller/garbagecollector GraphBuilder): a cascading delete looks
        # there, not at every object of the namespace
        self.owned: dict[str, dict[Key, Resource]] = {}
        self.owners_of: dict[Key, tuple[str, ...]] = {}
        # the keys of each kind in each namespace: a list looks at those, not at every object
        # (group, plural, namespace) → its objects' names, sorted: lists and pages walk
        # them in key order without sorting (etcd's keys are ordered the same way)
        self.kinds: dict[tuple[str, str, str], builtins.list[str]] = {}
        self.rv = 0
        self.history: deque[Past] = deque(maxlen=history)
        self.history_sizes: deque[tuple[int, float]] = deque(maxlen=history)  # bytes, time
        self.history_bytes = 0
        self.compacted = 0  # events up to this resourceVersion are gone
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[WatchEvent], None]] = []

    # --- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any]:
        found = self.find(resource, namespace, name)
        if found is None:
            raise not_found(resource, name)
        return found

    def find(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get(key_of(resource, namespace, name))
        return _copy(obj) if obj is not None else None

    def _read(self, key: Key) -> dict[str, Any]:
        """The stored object, for reading only (a cold one is decoded: a fresh copy)."""
        obj = self.objects[key]
        return pickle.loads(obj) if isinstance(obj, bytes) else obj

    def entries(self, resource: Resource, namespace: str = "") -> builtins.list[Any]:
        """The stored entries of a list at this moment, in key order, undecoded (a cold
        kind's are bytes): a snapshot to read later, a little at a time (`decoded`), while
        writes go on (a write stores a new entry, never changes one)."""
        return [self.objects[key] for key in self._keys(resource, namespace)]

    @staticmethod
    def decoded(entry: Any) -> dict[str, Any]:
        """An entry of `entries` as an object, for reading only."""
        return pickle.loads(entry) if isinstance(entry, bytes) else cast(dict[str, Any], entry)

    def scan(
        self, resource: Resource, namespace: str = "", matches: Matcher | None = None
    ) -> builtins.list[tuple[Key, dict[str, Any]]]:
        """The matching (key, stored object) pairs in key order: for reading only (the
        objects are the store's own), so the controllers' frequent reads copy nothing."""
        found = []
        for key in self._keys(resource, namespace):
            obj = self._read(key)
            if matches is None or matches(obj):
                found.append((key, obj))
        return found

    def owned_by(self, uid: str) -> builtins.list[tuple[Resource, Key, dict[str, Any]]]:
        """The objects that name `uid` among their ownerReferences: stored, read-only."""
        return [(r, key, self._read(key)) for key, r in self.owned.get(uid, {}).items()]

    def _index_owners(self, resource: Resource, key: Key, uids: tuple[str, ...]) -> None:
        before = self.owners_of.pop(key, ())
        for uid in before:
            if uid not in uids and uid in self.owned:
                self.owned[uid].pop(key, None)
                if not self.owned[uid]:
                    del self.owned[uid]
        for uid in uids:
            self.owned.setdefault(uid, {})[key] = resource
        if uids:
            self.owners_of[key] = uids

    def _buckets(self, resource: Resource, namespace: str) -> builtins.list[str]:
        if namespace and resource.namespaced:
            return [namespace]
        group, plural = resource.group, resource.plural
        return sorted(ns for (g, p, ns) in self.kinds if (g, p) == (group, plural))

    def _count_after(self, resource: Resource, namespace: str, after: tuple[str, ...]) -> int:
        count = 0
        for ns in self._buckets(resource, namespace):
            names = self.kinds.get((resource.group, resource.plural, ns), [])
            if ns == after[2]:
                count += len(names) - bisect.bisect_right(names, after[3])
            elif ns > after[2]:
                count += len(names)
        return count

    def _keys(
        self, resource: Resource, namespace: str, after: tuple[str, ...] | None = None
    ) -> Iterable[Key]:
        """The keys of a resource (in one namespace, or all), in order, after `after`."""
        group, plural = resource.group, resource.plural
        for ns in self._buckets(resource, namespace):
            if after is not None and ns < after[2]:
                continue
            names = self.kinds.get((group, plural, ns), [])
            start = bisect.bisect_right(names, after[3]) if after and ns == after[2] else 0
            for name in names[start:]:
                yield (group, plural, ns, name)

    def list(
        self, resource: Resource, namespace: str = "", matches: Matcher | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Copies of the matching objects, in key order. `matches` sees the stored objects
        (it must not change them), so only what matches is copied."""
        return [clone(obj) for _, obj in self.scan(resource, namespace, matches)]

    def view(
        self, resource: Resource, namespace: str = "", matches: Matcher | None = None
    ) -> builtins.list[dict[str, Any]]:
        """The matching stored objects themselves, in key order: never to be changed."""
        return [obj for _, obj in self.scan(resource, namespace, matches)]

    def page(
        self,
        resource: Resource,
        namespace: str,
        matches: Matcher | None,
        limit: int,
        after: tuple[str, ...] | None,
    ) -> tuple[builtins.list[dict[str, Any]], int | None, tuple[str, ...] | None]:
        """One page of a chunked list (`limit`, `continue`): copies of at most `limit`
        matching objects after the key `after`, how many more there are (None when a
        selector filters: apiserver storage/etcd3/store.go GetList sets remainingItemCount
        "only if the predicate is empty"), and the last key given when more follow.
        It walks only as far as the page reaches: `limit=1` costs one object, not all."""
        taken: builtins.list[Key] = []
        more = False
        for key in self._keys(resource, namespace, after):
            if matches is not None and not matches(self._read(key)):
                continue
            if len(taken) == limit:
                more = True
                break
            taken.append(key)
        remaining: int | None = None
        if matches is None:
            remaining = self._count_after(resource, namespace, taken[-1]) if more else 0
        last = taken[-1] if more else None
        return [_copy(self.objects[k]) for k in taken], remaining, last

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
        names = self.kinds[key[:3]]
        del names[bisect.bisect_left(names, key[3])]
        self._index_owners(resource, key, ())
        self.rv += 1
        obj = _copy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit(WatchEvent("DELETED", resource, obj, self.rv))
        return obj

    def _commit(
        self, kind: str, resource: Resource, key: Key, obj: dict[str, Any]
    ) -> dict[str, Any]:
        if _over_etcd_limit(obj):
            raise too_large()
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)  # one serialisation, three uses
        if key not in self.objects:
            bisect.insort(self.kinds.setdefault(key[:3], []), key[3])
        refs = obj["metadata"].get("ownerReferences") or []
        self._index_owners(resource, key, tuple(str(r.get("uid", "")) for r in refs))
        self.objects[key] = data if resource.kind in COLD_KINDS else pickle.loads(data)
        self._emit(WatchEvent(kind, resource, pickle.loads(data), self.rv), data)
        return obj

    def _emit(self, event: WatchEvent, data: bytes | None = None) -> None:
        self._remember(event, data)
        for watcher in list(self.watchers):
            if watcher.wants(event):
                watcher.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    def _remember(self, event: WatchEvent, data: bytes | None) -> None:
        if len(self.history) == self.history.maxlen:
            self._forget_oldest()
        size = _size(event.object)
        if data is None:
            data = pickle.dumps(event.object, pickle.HIGHEST_PROTOCOL)
        uid = str((event.object.get("metadata") or {}).get("uid", ""))
        self.history.append(Past(event.type, event.resource, event.rv, uid, data))
        self.history_sizes.append((size, time.monotonic()))
        self.history_bytes += size
        horizon = time.monotonic() - HISTORY_SECONDS
        while len(self.history) > 1 and (
            self.history_bytes > HISTORY_BYTES or self.history_sizes[0][1] < horizon
        ):
            self._forget_oldest()
        if event.type == "DELETED":
            self._forget_earlier_events_of(event)

    def compact(self, rv: int) -> None:
        """Forget the history up to `rv`, as an etcd compaction does."""
        while self.history and self.history[0].rv <= rv:
            self._forget_oldest()
        self.compacted = max(self.compacted, rv)

    def _forget_oldest(self) -> None:
        event = self.history.popleft()
        size, _ = self.history_sizes.popleft()
        self.history_bytes -= size
        self.compacted = max(self.compacted, event.rv)

    def _forget_earlier_events_of(self, deleted: WatchEvent) -> None:
        """When a deleted object's earlier events hold much (a large ConfigMap's versions),
        compact the history up to the last of them, so that none stays in memory. Small
        objects (pods, events) age out of the window as usual."""
        uid = (deleted.object.get("metadata") or {}).get("uid")
        last, held = 0, 0
        for past, (size, _) in zip(self.history, self.history_sizes, strict=True):
            if past.rv != deleted.rv and past.uid == uid:
                last, held = past.rv, held + size
        if held >= LARGE_HISTORY:
            while self.history and self.history[0].rv <= last:
                self._forget_oldest()
            release_free_memory()

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
            if since < self.compacted:
                raise gone(f"too old resource version: {since} ({self.compacted})")
            newer = []
            for past in reversed(self.history):  # only what came after `since`
                if past.rv <= since:
                    break
                if past.resource is resource:
                    newer.append(past)
            for past in reversed(newer):
                event = past.event()
                if watcher.wants(event):
                    watcher.queue.put_nowait(event)
        self.watchers.add(watcher)
        return watcher

    def stop_watch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def drop_all_watches(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()
        self.watchers.clear()


def _copy(stored: dict[str, Any] | bytes) -> dict[str, Any]:
    copied: dict[str, Any] = pickle.loads(stored) if isinstance(stored, bytes) else clone(stored)
    return copied


def _size(obj: dict[str, Any]) -> int:
    """Roughly what an object holds: its data values' lengths, plus a fixed overhead."""
    data = obj.get("data")
    if isinstance(data, dict):
        return 1024 + sum(len(str(v)) for v in data.values())
    return 1024
