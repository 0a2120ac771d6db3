"""One set of watches per namespace for the whole session, shared by every consumer.

An `Informer` lists one kind once, then watches it (watching.py: relists on 410, on a
dropped stream, on a new server), keeps the objects it saw by name, and hands every
change to whoever subscribed: the rollouts, the idle monitor, the log tails, each
workflow of the session. So a save opens no watch and lists nothing: what a cycle reads
before it applies, and the rollout it follows, come from these.

The cache is also written by pdwatch's own writes (`record`): the answer to an apply is
newer than anything the watch has delivered yet, and a watch event older than what is
cached is not taken (client-go's mutation cache does the same). A name the cache does
not hold is read from the API server (`Namespace.get`): the watches see only pdwatch's
objects (its labels), and a same-named object of someone else's must still be found.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from devloop.kube.client import KINDS, Kube
from devloop.kube.errors import KubeError
from devloop.kube.watching import watch_objects
from devloop.manifests import MANAGED_BY

Obj = dict[str, Any]
Change = tuple[str, Obj]  # ("ADDED" | "MODIFIED" | "DELETED" | "SYNCED", object)

# Everything pdwatch deploys carries this label, in either format.
PDWATCH_OBJECTS = f"app.kubernetes.io/managed-by in ({','.join(sorted(set(MANAGED_BY.values())))})"


def carries(obj: Obj, labels: dict[str, str]) -> bool:
    """Whether the object has every one of these labels (what a selector `k=v,…` picks)."""
    have = (obj.get("metadata") or {}).get("labels") or {}
    return all(have.get(key) == value for key, value in labels.items())


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def with_kind(kind: str, obj: Obj) -> Obj:
    """A list's items do not say what they are (its watch's do): said, so every object
    pdwatch reads compares with what it renders, and is known by kind and name."""
    if "kind" in obj:
        return obj
    return {"apiVersion": KINDS[kind].api_version, "kind": kind, **obj}


def version(obj: Obj) -> int:
    """An object's resourceVersion as a number, -1 if it is not one (the API calls it
    opaque; etcd-backed servers, both of pdwatch's among them, count up)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return -1


def newer(candidate: Obj, cached: Obj | None) -> bool:
    """Whether `candidate` may replace `cached`: not an older version of the same object."""
    if cached is None:
        return True
    same = (candidate.get("metadata") or {}).get("uid") == (cached.get("metadata") or {}).get("uid")
    return not same or version(candidate) >= version(cached)


@dataclass(eq=False)  # one subscriber is one, whatever it holds
class Subscription:
    """The changes one consumer asked for, in order; ends with the informer's failure."""

    informer: Informer
    wants: Callable[[Obj], bool]
    queue: asyncio.Queue[Change | KubeError] = field(default_factory=asyncio.Queue)

    def offer(self, change: Change) -> None:
        kind, obj = change
        if kind == "SYNCED" or self.wants(obj):
            self.queue.put_nowait(change)

    def __aiter__(self) -> AsyncIterator[Change]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[Change]:
        while True:
            item = await self.queue.get()
            if isinstance(item, KubeError):
                raise item
            yield item

    def close(self) -> None:
        self.informer.subscribers.discard(self)


class Informer:
    """One kind in one namespace, listed and watched while anyone needs it.

    `keep=False`: changes only, no cache, and only what happens from the start on (Events:
    a namespace may hold tens of thousands of old ones)."""

    def __init__(self, kube: Kube, kind: str, label_selector: str = "", keep: bool = True):
        self.kube = kube
        self.kind = kind
        self.label_selector = label_selector
        self.keep = keep
        self.objects: dict[str, Obj] = {}
        self.synced = asyncio.Event()  # the first list is in
        # the cache holds what the server holds (as of the watch): not between a lost
        # stream and the list that follows it, when reads go to the API server
        self.current = False
        self.subscribers: set[Subscription] = set()
        self.failure: KubeError | None = None
        self.task: asyncio.Task[None] | None = None
        self.newest = -1  # the highest resourceVersion the watch has delivered
        self.moved = asyncio.Event()  # set (and cleared) whenever `newest` grows

    def start(self) -> None:
        """Start, or start again after a failure (a subscriber asks again: permissions may
        have been granted meanwhile; a read does not, it asks the API server instead)."""
        if self.task is not None and self.task.done():  # it failed: list afresh
            self.failure = None
            self.synced.clear()
            self.task = None
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"informer {self.kind}")

    async def _run(self) -> None:
        try:
            async for kind, obj in watch_objects(
                self.kube,
                self.kind,
                self.label_selector,
                from_now=not self.keep,
                synced=True,
            ):
                self._take(kind, obj)
        except KubeError as exc:  # not retryable (a refusal): said to every subscriber
            self.failure = exc
            self.synced.set()
            for subscription in list(self.subscribers):
                subscription.queue.put_nowait(exc)

    def _take(self, kind: str, obj: Obj) -> None:
        if kind == "RELIST":
            self.current = False
            return
        if kind == "SYNCED":
            self.current = True
            if self.keep:
                listed = set(obj["names"])
                for name in [n for n in self.objects if n not in listed]:
                    self._tell(("DELETED", self.objects.pop(name)))
            self.synced.set()
            self._tell((kind, obj))
            return
        obj = with_kind(self.kind, obj)
        if version(obj) > self.newest:
            self.newest = version(obj)
            self.moved.set()
            self.moved.clear()
        name = obj["metadata"]["name"]
        if self.keep:
            cached = self.objects.get(name)
            if kind == "DELETED":
                if cached is not None and not newer(obj, cached):
                    return  # deleted, then made again by a write already recorded
                self.objects.pop(name, None)
            elif newer(obj, cached):
                self.objects[name] = obj
            else:
                return  # older than what pdwatch's own write recorded
        self._tell((kind, obj))

    def _tell(self, change: Change) -> None:
        for subscription in list(self.subscribers):
            subscription.offer(change)

    def record(self, obj: Obj) -> None:
        """What pdwatch's own write returned: newer than the watch may have told yet."""
        if self.keep:
            self._take("MODIFIED", obj)

    def forget(self, name: str) -> None:
        """pdwatch deleted it."""
        if self.keep and name in self.objects:
            self._tell(("DELETED", self.objects.pop(name)))

    async def subscribe(
        self, wants: Callable[[Obj], bool] = lambda _: True, replay: bool = True
    ) -> Subscription:
        """Changes from now on, after (with `replay`) the objects already known, as ADDED
        (what a list and a watch would have given)."""
        self.start()
        await self.synced.wait()
        if self.failure is not None:
            raise self.failure
        subscription = Subscription(self, wants)
        if replay:
            for obj in list(self.objects.values()):
                subscription.offer(("ADDED", obj))
            if self.keep:  # what a list would have ended with: what is not here is gone
                subscription.offer(("SYNCED", {"names": list(self.objects)}))
        self.subscribers.add(subscription)
        return subscription

    async def reached(self, resource_version: str) -> None:
        """Return once the watch has delivered this resourceVersion or a later one: what
        was changed outside the session (by a test, say) is then in the cache."""
        wanted = version({"metadata": {"resourceVersion": resource_version}})
        while self.newest < wanted and self.failure is None:
            waiter = asyncio.ensure_future(self.moved.wait())
            try:
                await asyncio.wait({waiter}, timeout=1.0)  # also re-checks a failure
            finally:
                waiter.cancel()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


# The kinds pdwatch follows, with what each informer watches.
WATCHED = {
    "Deployment": PDWATCH_OBJECTS,
    "ReplicaSet": PDWATCH_OBJECTS,
    "Pod": PDWATCH_OBJECTS,
    "ConfigMap": PDWATCH_OBJECTS,
    "Service": PDWATCH_OBJECTS,
    "CronJob": PDWATCH_OBJECTS,
    "NetworkPolicy": PDWATCH_OBJECTS,
    "Secret": PDWATCH_OBJECTS,
}


class Namespace:
    """The session's informers for one namespace (made on first use), and reads that are
    answered from them when they can be."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.informers: dict[str, Informer] = {}
        kube.written = self._written

    def _written(self, kind: str, name: str, obj: Obj | None) -> None:
        informer = self.informers.get(kind)
        if informer is not None and obj is not None:
            informer.record(obj)
        elif informer is not None:
            informer.forget(name)

    def informer(self, kind: str) -> Informer:
        if kind not in self.informers:
            if kind == "Event":
                self.informers[kind] = Informer(self.kube, kind, keep=False)
            else:
                self.informers[kind] = Informer(self.kube, kind, WATCHED[kind])
            self.informers[kind].start()
        return self.informers[kind]

    async def _cache(self, kind: str) -> Informer | None:
        """The informer whose cache may answer a read now: None where its watch is
        refused, or its stream was lost and not yet listed again (a recreated cluster
        holds none of what was cached)."""
        informer = self.informer(kind)
        await informer.synced.wait()
        return informer if informer.failure is None and informer.current else None

    async def get(self, kind: str, name: str) -> Obj | None:
        """The object, from the cache when it holds it (then it is pdwatch's, as recent as
        the watch or pdwatch's last write), else from the API server (absent, or someone
        else's, or the cache cannot answer)."""
        if kind in WATCHED:
            informer = await self._cache(kind)
            if informer is not None and name in informer.objects:
                return informer.objects[name]
        return await self.kube.get(kind, name)

    async def ours(self, kind: str, name: str) -> Obj | None:
        """The object if pdwatch's watch holds it, for reads made only to prune what
        pdwatch made: someone else's of that name is not pdwatch's to delete, so the
        cache's word is enough. Where the cache cannot answer, the API server is asked."""
        informer = await self._cache(kind)
        if informer is None:
            return await self.kube.get(kind, name)
        return informer.objects.get(name)

    async def items(self, kind: str, labels: dict[str, str]) -> list[Obj]:
        """pdwatch's objects of `kind` that carry these labels: from the cache, or, where
        it cannot answer, from the API server."""
        informer = await self._cache(kind)
        if informer is None:
            listed = await self.kube.list(kind, label_selector=selector_string(labels))
            return [with_kind(kind, item) for item in listed.get("items") or []]
        return [o for o in informer.objects.values() if carries(o, labels)]

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.informers.values()))


_NAMESPACES: weakref.WeakKeyDictionary[Kube, Namespace] = weakref.WeakKeyDictionary()


def of(kube: Kube) -> Namespace:
    """The informers of `kube`'s namespace (every workflow of a session deploying there
    shares one Kube, so one set of watches)."""
    if kube not in _NAMESPACES:
        _NAMESPACES[kube] = Namespace(kube)
    return _NAMESPACES[kube]
