"""A local URL that keeps answering through every rollout (issue 28).

`http://127.0.0.1:PORT` forwards each request to the engine of the pod pdwatch serves:
the old pod until the new one is Ready, then the new one. Each request goes to the pod
that serves when it arrives, so one in flight at the switch completes on the pod it
started on. Requests go through the API server's pod proxy (`pods/NAME:8080/proxy/…`),
with pdwatch's own credentials: it works wherever pdwatch deploys (kind, k0s, the
embedded cluster), needs no port-forward stream that dies with its pod, and names the
pod, where the Service proxy would pick any Ready endpoint (during a rolling update, the
old one as well as the new). While no pod serves it answers 503 with a one-line JSON
reason, at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from devloop.kube.client import Kube
from devloop.kube.errors import KubeError
from devloop.manifests import ENGINE_PORT

# Not sent on: the connection's own headers, and credentials meant for this URL.
NOT_FORWARDED = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "authorization"}
)


# A pod stopped at the switch (its successor Ready, pdwatch not yet told) answers the
# proxy's "error trying to reach service"; the request is sent again, to the pod that
# serves by then, for at most this long (a pod deleted by hand: its replacement must start).
SWITCH_WAIT_S = 10.0
SWITCH_STEP_S = 0.05
# At quit, how long the server waits for its handlers (each answers at once by then).
STOP_WAIT_S = 0.5


def is_status(body: bytes) -> bool:
    """A Kubernetes Status object: the API server's own answer, not the engine's."""
    return b'"kind":"status"' in body[:400].lower().replace(b" ", b"")


def not_the_engine(status: int, body: bytes) -> bool:
    """The API server answered, not the engine: the pod could not be reached (503), or is
    gone (a Status object)."""
    unreachable = status == 503 and b"error trying to reach service" in body[:400].lower()
    return unreachable or (status in (404, 503) and is_status(body))


@dataclass(frozen=True)
class Answer:
    """What came back: the engine's answer, or pdwatch's own 503 (`reason` set) when no
    pod serves, the API server cannot be reached, or pdwatch quits."""

    status: int
    content_type: str
    body: bytes
    reason: str = ""


def status_message(body: bytes) -> str:
    """The message of a Kubernetes Status object, or its text."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return str(message) if message else body[:200].decode("utf-8", "replace")


def refused(reason: str) -> Answer:
    return Answer(503, "application/json", (json.dumps({"error": reason}) + "\n").encode(), reason)


class PodRoute:
    """Sends a request to the pod being served, as the URL and `t` both do: the same pod,
    the same retry at the switch, the same reasons when there is none."""

    def __init__(self, kube: Kube, serving: Callable[[], str]) -> None:
        self.kube = kube
        self.serving = serving
        self.closing = asyncio.Event()  # set at quit: requests in flight are answered now

    async def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            sending = asyncio.ensure_future(self._send(method, path, body, headers))
            await asyncio.wait({sending, closing}, return_when=asyncio.FIRST_COMPLETED)
            if sending.done():
                return sending.result()
            sending.cancel()
            return refused("pdwatch quit while the request was in flight")
        finally:
            closing.cancel()

    async def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SWITCH_WAIT_S
        while True:
            pod = self.serving()
            if not pod:
                return refused("no pod of the workflow is Ready yet")
            try:
                status, content_type, answer = await self.kube.pod_proxy(
                    pod, ENGINE_PORT, method, path, body, headers
                )
            except KubeError as exc:
                return refused(f"pod {pod} could not be reached: {exc}"[:300])
            if status == 403 and is_status(answer):
                return refused(
                    f"the cluster refuses pdwatch the pod proxy (create pods/proxy in namespace "
                    f"{self.kube.namespace}): {status_message(answer)}"[:300]
                )
            if not not_the_engine(status, answer):
                break
            if self.serving() != pod:
                continue  # the switch landed while this attempt failed: to the new pod
            if loop.time() >= deadline:
                break
            await asyncio.sleep(SWITCH_STEP_S)  # a retry's pause, for the switch to land
        return Answer(status, content_type, answer)


class LocalUrl:
    """Serves until `stop()`, through `route` (the pod it names)."""

    def __init__(self, route: PodRoute, port: int = 0) -> None:
        self.route = route
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=STOP_WAIT_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if self.port == 0:  # the free port the system gave
            self.port = int(self._runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        """Stops listening; requests in flight are answered 503 (pdwatch quits)."""
        self.route.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        answer = await self.route.send(
            request.method, request.path_qs, await request.read(), headers
        )
        response = web.Response(status=answer.status, body=answer.body)
        if answer.content_type:
            response.headers["Content-Type"] = answer.content_type
        return response
