"""List, then watch from the list's resourceVersion; start over when the stream ends,
drops, or the resourceVersion is too old (410) or unknown (a recreated cluster).

Consumers see ("ADDED" | "MODIFIED" | "DELETED", object). After a restart they may see
an object ADDED again, so they must treat events as "this is the current state".

A stream that ends at its timeout is watched again from where it was. One that ends
sooner, or fails, is listed afresh: the server went away, and the one that answers now
may be another (a cluster recreated at the same address) that knows nothing of the old
resourceVersion.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from devloop.kube import retry
from devloop.kube.client import Kube
from devloop.kube.errors import KubeError, from_status

MAX_BACKOFF = 5.0
WATCH_TIMEOUT_S = 300  # what each watch asks the server for
EARLY_S = 5  # a stream ending this much before its timeout was cut, not timed out


async def watch_objects(
    kube: Kube,
    kind: str,
    label_selector: str = "",
    field_selector: str = "",
    from_now: bool = False,
    synced: bool = False,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """`from_now`: only what happens from now on. The list asks for one item (limit=1) just
    for the collection's resourceVersion: a namespace's 20,000 old Events are not sent.
    `synced`: after each (re)list, ("SYNCED", {"names": [...]}) tells what the list held, so
    an object that vanished while no watch was open (a recreated cluster) is noticed; and
    ("RELIST", {}) as soon as a stream is lost: what was seen may be out of date until the
    next SYNCED."""
    rv: str | None = None
    failures = 0
    while True:
        try:
            if rv is None:
                listed = await kube.list(
                    kind, label_selector, field_selector, limit=1 if from_now else None
                )
                rv = listed["metadata"]["resourceVersion"]
                items = [] if from_now else listed.get("items") or []
                for item in items:
                    yield "ADDED", item
                if synced:
                    yield "SYNCED", {"names": [i["metadata"]["name"] for i in items]}
            stream = kube.watch(kind, rv, label_selector, field_selector, WATCH_TIMEOUT_S)
            opened = time.monotonic()
            async for line in stream:
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    if obj.get("code") == 410:  # expired: relist
                        rv = None
                        stream.close()
                        break
                    raise from_status(obj.get("code") or 500, json.dumps(obj), f"watch {kind}")
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if event.get("type") != "BOOKMARK":
                    yield event["type"], obj
            else:
                if time.monotonic() - opened < WATCH_TIMEOUT_S - EARLY_S:
                    rv = None  # cut short: the server went away; list afresh
            if rv is None and synced:
                yield "RELIST", {}
            failures = 0
        except KubeError as exc:
            if not exc.retryable and exc.status != 410:  # Gone/Expired: list afresh
                raise
            if synced:
                yield "RELIST", {}
            failures += 1
            await asyncio.sleep(retry.delay(failures, 0.1, MAX_BACKOFF, exc.retry_after))
            rv = None  # the server may be a new one: start from a fresh list
