"""Fault injection for reliability tests, and the bookkeeping of open streams it needs:
slow requests, failing requests, dropped watch and log connections."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Faults:
    latency_s: float = 0.0
    fail_next: int = 0
    fail_status: int = 500
    streams: set[web.StreamResponse] = field(default_factory=set)

    def fail(self, count: int, status: int = 500) -> None:
        self.fail_next, self.fail_status = count, status

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
