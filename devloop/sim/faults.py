"""Fault injection for reliability tests, and the bookkeeping of open streams it needs:
slow requests, failing requests, dropped watch and log connections."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Rule:
    """Requests matching `method` and `path_part` (both optional) from the `skip`+1-th on:
    `count` of them fail with `status` (0: they are held until released, then dropped, as
    if the client had died waiting), or are answered `delay_s` late."""

    method: str = ""
    path_part: str = ""
    skip: int = 0
    count: int = 1
    status: int = 500
    delay_s: float = 0.0
    message: str = "injected fault (pdwatch embedded cluster)"
    # The rule starts only after a request matching this ("METHOD", "path part") was
    # served: "the API server goes down right after the ConfigMap write".
    after: tuple[str, str] | None = None
    # A Retry-After header on the failure, in seconds (APF's 429 says 1)
    retry_after: int | None = None

    def matches(self, request: web.Request) -> bool:
        return (not self.method or request.method == self.method) and (
            self.path_part in request.path
        )


@dataclass
class Faults:
    latency_s: float = 0.0
    fail_next: int = 0
    fail_status: int = 500
    streams: set[web.StreamResponse] = field(default_factory=set)
    rules: list[Rule] = field(default_factory=list)
    held: int = 0  # requests being held now
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def fail(self, count: int, status: int = 500) -> None:
        self.fail_next, self.fail_status = count, status

    def rule_for(self, request: web.Request) -> Rule | None:
        """The rule this request falls under, if any (its count is used up here)."""
        for rule in self.rules:
            if rule.after is not None:
                method, part = rule.after
                if request.method == method and part in request.path:
                    rule.after = None  # this one is served; the rule applies from the next
                continue
            if not rule.matches(request):
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            if rule.count > 0:
                rule.count -= 1
                return rule
        return None

    def dropped(self, response: web.StreamResponse) -> bool:
        return response not in self.streams


def cut(request: web.Request) -> None:
    """End a stream as a dropped connection ends: no terminating chunk, the socket closed.

    A clean end (the last chunk, then a close) let the client put the connection back in
    its pool and lose a race with the close on the next request ("Remote end closed
    connection without response" on a POST, which is not retried). A dropped connection
    is a broken read, and a broken connection is never reused.
    """
    if request.transport is not None:
        request.transport.abort()


async def start_stream(
    request: web.Request, faults: Faults, content_type: str = "application/json"
) -> web.StreamResponse:
    """A chunked response that stays open (watch, log follow), registered so it can be dropped."""
    response = web.StreamResponse(
        headers={"Content-Type": content_type, "Cache-Control": "no-cache, private"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    faults.streams.add(response)
    return response


async def inject(
    faults: Faults, request: web.Request, message: str = "injected fault (pdwatch embedded cluster)"
) -> tuple[int, str, int | None] | None:
    """What the faults do to this request: wait (latency, a delay rule, a held request,
    which is then dropped), or answer it with an error, as (status, message, Retry-After
    seconds or None); None when it is to be served."""
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    rule = faults.rule_for(request)
    if rule is not None and rule.delay_s:
        await asyncio.sleep(rule.delay_s)
    elif rule is not None and rule.status == 0:
        faults.held += 1
        try:
            await faults.release.wait()
        finally:
            faults.held -= 1
        cut(request)
        raise web.HTTPServiceUnavailable()
    elif rule is not None:
        return rule.status, rule.message, rule.retry_after
    if faults.fail_next > 0:
        faults.fail_next -= 1
        return faults.fail_status, message, None
    return None
