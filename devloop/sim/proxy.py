"""What the API server forwards rather than answers: `pods/log` to the node's kubelet API
(as kube-apiserver's LogLocation does), and `services/proxy` and `pods/proxy` to the pod's
own address (as its proxy handlers dial the endpoint). The node is pdwatch's node
(devloop.node), the one Kubernetes' own control plane runs with.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
from aiohttp import web

from devloop.sim import resources
from devloop.sim.api import Api
from devloop.sim.endpoints import SLICES, ready_addresses, service_port
from devloop.sim.errors import ApiError, bad_request, not_found
from devloop.sim.faults import Faults, cut, start_stream
from devloop.sim.store import Store

PODS = resources.of_kind("v1", "Pod")
SERVICES = resources.of_kind("v1", "Service")
# Not sent on by the service proxy: what its authentication filter removed (filters.
# WithAuthentication drops Authorization), hop-by-hop headers (net/http/httputil), and
# what the client library sets for its own connection.
NOT_FORWARDED = frozenset(
    {
        "authorization",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
# what of a pods/log request the API server passes to the kubelet (PodLogOptions)
LOG_OPTIONS = (
    "follow",
    "previous",
    "sinceSeconds",
    "sinceTime",
    "timestamps",
    "tailLines",
    "limitBytes",
)
PROXY_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """The API server's proxy forwards the request's headers, without the credentials its
    authentication consumed and the hop-by-hop ones (a webhook's signature and event
    headers reach the engine)."""
    return {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}


class Forwarder:
    def __init__(self, api: Api, store: Store, node_url: str) -> None:
        self.api, self.store, self.node_url = api, store, node_url
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- pods/log -------------------------------------------------------------------------

    async def log(
        self, request: web.Request, faults: Faults, ns: str, name: str
    ) -> web.StreamResponse:
        pod = self.store.find(PODS, ns, name)
        if pod is None:
            raise not_found(PODS, name)
        cname = str(pod["spec"]["containers"][0]["name"])
        wanted = request.query.get("container") or cname
        if wanted != cname:
            raise bad_request(f"container {wanted} is not valid for pod {name}")
        if not (pod.get("spec") or {}).get("nodeName"):
            # pod strategy LogLocation: no host yet, no location: an empty answer
            return web.Response(body=b"", content_type="text/plain")
        params = {k: request.query[k] for k in LOG_OPTIONS if k in request.query}
        url = f"{self.node_url}/containerLogs/{ns}/{name}/{cname}"
        try:
            got = await self.session.get(url, params=params)
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiError(
                500, "InternalError", f'Get "{url}": {exc}'
            ) from None  # the kubelet does not answer
        try:
            if got.status != 200:
                text = (await got.text(errors="replace")).strip()
                if got.status == 404:
                    raise not_found(PODS, name)
                # GenericHttpResponseChecker: the kubelet's text as the Status's message
                raise ApiError(got.status, "BadRequest" if got.status == 400 else "", text)
            if params.get("follow") != "true":
                return web.Response(body=await got.read(), content_type="text/plain")
            return await self._stream(request, faults, got)
        finally:
            got.release()

    async def _stream(
        self, request: web.Request, faults: Faults, got: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = await start_stream(request, faults, "text/plain")
        dropped = asyncio.ensure_future(self._dropped(faults, response))
        try:
            while True:
                reading = asyncio.ensure_future(got.content.readany())
                done, _ = await asyncio.wait(
                    {reading, dropped}, return_when=asyncio.FIRST_COMPLETED
                )
                if dropped in done:
                    reading.cancel()
                    cut(request)
                    break
                chunk = reading.result()
                if not chunk:
                    break
                await response.write(chunk)
        except (ConnectionResetError, aiohttp.ClientError, asyncio.CancelledError):
            pass
        finally:
            dropped.cancel()
            faults.streams.discard(response)
        return response

    @staticmethod
    async def _dropped(faults: Faults, response: web.StreamResponse) -> None:
        """Resolves when a fault hook drops this stream."""
        while not faults.dropped(response):
            await asyncio.sleep(0.05)

    # --- services/proxy and pods/proxy ------------------------------------------------------

    async def service(
        self, request: web.Request, ns: str, service_ref: str, subpath: str
    ) -> web.StreamResponse:
        parts = service_ref.split(":")
        name = parts[1] if len(parts) == 3 else parts[0]
        port = parts[-1] if len(parts) > 1 else ""
        service = self.store.find(SERVICES, ns, name)
        if service is None:
            raise not_found(SERVICES, name)
        chosen = service_port(service, port)
        found = self.store.find(SLICES, ns, name)
        endpoints = ready_addresses(found, chosen.get("name", "")) if chosen else []
        if not endpoints:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        return await self._forward(request, *random.choice(endpoints), subpath)

    async def pod(
        self, request: web.Request, ns: str, pod_ref: str, subpath: str
    ) -> web.StreamResponse:
        """`pods/NAME:PORT/proxy/PATH`: to that pod, Ready or not, as the API server's pod
        proxy dials the pod's address."""
        name, _, port = pod_ref.partition(":")
        # RBAC's verb for a proxy subresource is the HTTP method's
        verb = PROXY_VERBS.get(request.method, request.method.lower())
        if (verb, "pods/proxy") in self.api.forbidden:
            raise ApiError(
                403,
                "Forbidden",
                # the name as the request gave it, port and all (kube-apiserver v1.37.2)
                f'pods "{pod_ref}" is forbidden: User "pdwatch-embedded" cannot {verb} '
                f'resource "pods/proxy" in API group "" in the namespace "{ns}"',
                {"name": pod_ref, "kind": "pods"},
            )
        pod = self.store.find(PODS, ns, name)
        if pod is None:
            raise not_found(PODS, name)
        number = int(port) if port.isdigit() else first_port(pod)
        address = str((pod.get("status") or {}).get("podIP") or "")
        if not address:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp :{number}: connect: connection refused",
            )
        return await self._forward(request, address, number, subpath)

    async def _forward(
        self, request: web.Request, address: str, port: int, subpath: str
    ) -> web.StreamResponse:
        """One HTTP request to the pod, with the headers of the request that came to the
        proxy; a pod that does not answer is the proxy's 503."""
        target = subpath if not request.query_string else f"{subpath}?{request.query_string}"
        url = f"http://{address}:{port}/{target.lstrip('/')}"
        body = await request.read()
        headers = {"Content-Type": "application/json"} if body else {}
        headers.update(forwarded_headers(request))
        try:
            async with self.session.request(request.method, url, data=body, headers=headers) as got:
                return web.Response(
                    status=got.status,
                    body=await got.read(),
                    content_type=got.content_type,
                )
        except aiohttp.ClientConnectorError:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {address}:{port}: connect: "
                "connection refused",
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiError(
                503, "ServiceUnavailable", f"error trying to reach service: {exc}"
            ) from None


def first_port(pod: dict[str, Any]) -> int:
    """The pod proxy's port when the request names none: the first declared (else 80)."""
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if "containerPort" in port:
                return int(port["containerPort"])
    return 80
