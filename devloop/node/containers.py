"""What runs in a container on the node: the engine, serving HTTP on the pod's own
address (so probes, the Service's endpoints and the API server's proxy reach it as on a
cluster), or a one-shot curl (a cron trigger). The engine here is the simulated one
(devloop.sim.engine); its output is the container's log.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from devloop.node.logs import ContainerLog
from devloop.node.podnet import PodNetwork
from devloop.sim.engine import Engine, Exit
from devloop.sim.settings import ImageBehaviour


@dataclass
class EngineContainer:
    """One run of the engine container. `boot()` loads the workflow as the engine does
    (waiting out top-level timers) and either dies (an Exit) or starts serving on the
    pod's address; `stop()` ends it as SIGTERM would (the engine has no handler)."""

    files: dict[str, str]
    log: ContainerLog
    behaviour: ImageBehaviour
    network: PodNetwork
    address: str
    port: int
    engine: Engine = field(init=False)
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.engine = Engine(self.files, self.log.append)

    async def boot(self) -> Exit | None:
        if self.behaviour.exit_code is not None:
            return Exit(self.behaviour.exit_code)
        steps = self.engine.boot()
        while True:
            try:
                wait = next(steps)
            except StopIteration as done:
                exit_: Exit | None = done.value
                break
            await asyncio.sleep(wait.seconds)
        if exit_ is not None:
            return exit_
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.SockSite(self._runner, self.network.listen(self.address, self.port))
        await site.start()
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.strip("/")
        if path == "health":
            if not self.behaviour.ready:
                return web.Response(status=503, text='{"status":"unavailable"}')
            return web.json_response({"status": "ok"})
        if path == "run" and request.method in ("POST", "GET"):
            raw = await request.read()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return web.Response(
                    status=400,
                    text='{"error":"invalid JSON body"}',
                    content_type="application/json",
                )
            result = self.engine.run(body)
            return web.Response(text=json.dumps(result), content_type="application/json")
        return web.Response(status=404, text="Not Found")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def curl(args: list[str], resolve: Any) -> tuple[int, list[str]]:
    """curl as a cron trigger runs it: (exit code, what it printed). `resolve(host, port)`
    gives `address:port` of a ready endpoint of the Service the host names, None when there
    is no such Service, "" when it has no ready endpoint. Knows -X, -d, -H, -f, -s, -S."""
    method, body, fail, url = "", None, False, ""
    headers: dict[str, str] = {}
    words = iter(args)
    for word in words:
        if word in ("-X", "--request"):
            method = next(words, "")
        elif word in ("-d", "--data", "--data-raw"):
            body = next(words, "")
        elif word in ("-H", "--header"):
            name, _, value = next(words, "").partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-f", "--fail") or (
            word.startswith("-") and "f" in word[1:] and not word.startswith("--")
        ):
            fail = True
        elif not word.startswith("-"):
            url = word
    method = method or ("POST" if body is not None else "GET")
    rest = url.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    target = await resolve(host, int(port or 80))
    if target is None:
        return 6, [f"curl: (6) Could not resolve host: {host}"]
    if not target:
        return 7, [
            f"curl: (7) Failed to connect to {host} port {port or 80} after 0 ms: "
            "Couldn't connect to server"
        ]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                f"http://{target}/{path}",
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=60),
            ) as response,
        ):
            text = await response.text()
            code = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return 7, [f"curl: (7) Failed to connect to {host} port {port or 80}: {exc}"]
    if fail and code >= 400:
        return 22, [f"curl: (22) The requested URL returned error: {code}"]
    return 0, [text]
