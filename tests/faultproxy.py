"""A fault-injecting HTTP proxy in front of any Kubernetes API server.

Real-cluster mode (tests/target.py) puts one in front of the cluster under test, so the
tests about pdwatch's behaviour under faults (failing, slow, held and dropped requests, an
API server that goes away) run against kind or k0s exactly as against the embedded
cluster. It speaks plain HTTP to its clients and the cluster's own TLS and credentials
upstream (the kubeconfig's client certificate or token).

It also keeps each test inside its namespace (and the namespaces named `<it>-*`, which
the test creates and removes itself): a request for another namespace, or a write to a
cluster-scoped object, is refused with 403, so a test that forgot to use its namespace
fails instead of touching the cluster.

Fault semantics are the embedded cluster's (devloop.sim.faults.Rule), so one test reads
the same in both modes. So are RBAC refusals (`forbid`): the proxy then acts as a
ServiceAccount of the test's namespace (impersonation) whose Role grants what pdwatch uses
but the forbidden verbs, and the real API server's RBAC refuses them.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TypeVar

import aiohttp
from aiohttp import web
from kubernetes import client

from devloop.sim.faults import Faults, Rule, cut, inject
from devloop.sim.server import status_response

T = TypeVar("T")

# Hop-by-hop headers (RFC 9110 §7.6.1) and those the proxy recomputes.
_DROPPED = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
    "authorization",
}
_NAMESPACED = re.compile(r"/namespaces/([^/]+)(/|$)")
# Cluster-scoped writes a test may make: reviews of its own permissions (pdwatch's
# preflight asks with them).
_ALLOWED_CLUSTER_WRITES = ("/selfsubjectaccessreviews", "/selfsubjectrulesreviews")


# What the limited ServiceAccount is granted (before `forbid` takes verbs away): every
# resource pdwatch and the tests' clients use, with every verb.
GRANTED = {
    "": (
        "pods",
        "pods/log",
        "pods/proxy",
        "services",
        "services/proxy",
        "configmaps",
        "secrets",
        "events",
        "serviceaccounts",
        "resourcequotas",
        "endpoints",
    ),
    "apps": ("deployments", "deployments/scale", "replicasets"),
    "batch": ("cronjobs", "jobs"),
    "networking.k8s.io": ("networkpolicies",),
    "discovery.k8s.io": ("endpointslices",),
    "events.k8s.io": ("events",),
}
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
LIMITED = "pdwatch-limited"


def limited_role(forbidden: set[tuple[str, str]]) -> list[dict[str, object]]:
    """The Role's rules: each granted resource with every verb not forbidden for it."""
    rules: list[dict[str, object]] = []
    for group, plurals in GRANTED.items():
        for plural in plurals:
            verbs = [v for v in VERBS if (v, plural) not in forbidden]
            if verbs:
                rules.append({"apiGroups": [group], "resources": [plural], "verbs": verbs})
    return rules


def owned(namespace: str, name: object) -> bool:
    return isinstance(name, str) and (name == namespace or name.startswith(namespace + "-"))


def outside(namespace: str, method: str, path: str, body: bytes = b"") -> str | None:
    """Why a request leaves the test's namespaces, or None when it stays inside."""
    if method == "POST" and path.rstrip("/") == "/api/v1/namespaces":
        try:  # creating the test's own namespace again (pdwatch --create-namespace)
            name = json.loads(body).get("metadata", {}).get("name")
        except (ValueError, AttributeError, UnicodeDecodeError):
            name = None
        if body.startswith(b"k8s\x00"):  # kubectl's typed create sends protobuf: the
            # name is in it as its bytes; the test's namespace prefix finds it
            found = re.search(re.escape(namespace.encode()) + rb"(?:-[a-z0-9-]*)?", body)
            name = found.group().decode() if found else None
        return None if owned(namespace, name) else f"creating namespace {name!r}: not this test's"
    match = _NAMESPACED.search(path)
    if match:
        if owned(namespace, match.group(1)):
            return None
        if method == "GET" and path.rstrip("/").endswith(f"/namespaces/{match.group(1)}"):
            return None  # reading whether another namespace exists touches nothing
        return f"namespace {match.group(1)!r} is not this test's ({namespace!r})"
    if method in ("GET", "HEAD") or path.endswith(_ALLOWED_CLUSTER_WRITES):
        return None
    return f"{method} {path} writes outside the test's namespace"


class FaultProxy:
    """Serves on 127.0.0.1 in a thread of its own; forwards to `upstream`."""

    def __init__(self, upstream: client.Configuration, namespace: str) -> None:
        self.upstream = upstream
        self.namespace = namespace
        self.faults = Faults()
        self.request_count = 0
        self.request_log: list[tuple[float, str, str, str]] | None = None
        self.port = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        # Open responses: the downstream request (to cut) and the upstream one (to close).
        self._streams: dict[web.StreamResponse, tuple[web.Request, aiohttp.ClientResponse]] = {}
        self._ready = threading.Event()
        self.forbidden: set[tuple[str, str]] = set()
        self.impersonate = ""  # the ServiceAccount the proxy acts as, once one is limited
        self._done: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        def main() -> None:
            asyncio.run(self._main())

        self._thread = threading.Thread(target=main, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("the fault proxy did not start")
        return self

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self.faults = Faults()  # its asyncio.Event belongs to this loop
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl_context()),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        await self._serve()
        self._ready.set()
        await self._done.wait()
        await self._unserve()
        await self._session.close()

    def stop(self) -> None:
        if self.impersonate:
            with self._admin() as api:
                rbac = client.RbacAuthorizationV1Api(api)
                for delete in (rbac.delete_cluster_role, rbac.delete_cluster_role_binding):
                    try:
                        delete(f"{LIMITED}-{self.namespace}")
                    except client.ApiException as err:
                        if err.status != 404:
                            raise
        if self.loop is not None and self._done is not None:
            self.loop.call_soon_threadsafe(self._done.set)
        if self._thread is not None:
            self._thread.join(15)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- the embedded cluster's fault hooks, black-box ------------------------------------

    def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        assert self.loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(fn(), self.loop)
        return future.result(15)

    def set_latency(self, seconds: float) -> None:
        self.faults.latency_s = seconds

    def fail_next(self, count: int, status: int = 500) -> None:
        self.faults.fail(count, status)

    def add_fault(self, rule: Rule) -> None:
        async def add() -> None:
            self.faults.rules.append(rule)

        self._call(add)

    def clear_faults(self) -> None:
        async def clear() -> None:
            self.faults.rules.clear()
            self.faults.release.set()
            self.faults.release = asyncio.Event()

        self._call(clear)

    @property
    def held_requests(self) -> int:
        return self.faults.held

    def drop_streams(self) -> None:
        """Cut every open watch and log stream, as a load balancer or a restart would."""

        async def drop() -> None:
            self._cut_streams()

        self._call(drop)

    def stop_server(self) -> None:
        """Stop answering on the port (connections refused); the cluster behind goes on."""
        self._call(self._unserve)

    def start_server(self) -> None:
        self._call(self._serve)

    # --- serving --------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | bool:
        cfg = self.upstream
        if not cfg.host.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        return context

    async def _serve(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    def _cut_streams(self) -> None:
        for request, upstream in self._streams.values():
            cut(request)
            upstream.close()
        self._streams.clear()

    async def _unserve(self) -> None:
        self._cut_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        injected = await inject(self.faults, request, "injected fault (pdwatch fault proxy)")
        if injected is not None:
            return status_response(*injected)
        refused = outside(self.namespace, request.method, request.path, await request.read())
        if refused is not None:
            return status_response(403, f"pdwatch test isolation: {refused}")
        self.request_count += 1
        if self.request_log is not None:  # as the embedded cluster's request_log
            self.request_log.append(
                (time.monotonic(), request.method, request.path, request.query_string)
            )
        return await self._forward(request)

    # --- RBAC -------------------------------------------------------------------------------

    def forbid(self, verb: str, plural: str) -> None:
        """From now on the API server refuses `verb` on `plural` to this proxy's clients:
        they act as a ServiceAccount whose Role grants what pdwatch uses but that."""
        self.forbidden.add((verb, plural))
        ns, name = self.namespace, LIMITED
        subject = {"kind": "ServiceAccount", "name": name, "namespace": ns}
        cluster_name = f"{name}-{ns}"
        with self._admin() as api:
            core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
            objects = [
                (
                    core.create_namespaced_service_account,
                    core.replace_namespaced_service_account,
                    {"metadata": {"name": name}},
                ),
                (
                    rbac.create_namespaced_role,
                    rbac.replace_namespaced_role,
                    {"metadata": {"name": name}, "rules": limited_role(self.forbidden)},
                ),
                (
                    rbac.create_namespaced_role_binding,
                    rbac.replace_namespaced_role_binding,
                    {
                        "metadata": {"name": name},
                        "subjects": [subject],
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "Role",
                            "name": name,
                        },
                    },
                ),
            ]
            for create, replace, body in objects:
                try:
                    create(ns, body)
                except client.ApiException as err:
                    if err.status != 409:
                        raise
                    replace(name, ns, body)
            # what pdwatch reads at the cluster's scope
            cluster_rules = [
                {
                    "apiGroups": [""],
                    "resources": ["namespaces", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["node.k8s.io"],
                    "resources": ["runtimeclasses"],
                    "verbs": ["get", "list", "watch"],
                },
            ]
            for make, body in (
                (
                    rbac.create_cluster_role,
                    {"metadata": {"name": cluster_name}, "rules": cluster_rules},
                ),
                (
                    rbac.create_cluster_role_binding,
                    {
                        "metadata": {"name": cluster_name},
                        "subjects": [subject],
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": cluster_name,
                        },
                    },
                ),
            ):
                try:
                    make(body)
                except client.ApiException as err:
                    if err.status != 409:
                        raise
        self.impersonate = f"system:serviceaccount:{ns}:{name}"

    def _admin(self) -> client.ApiClient:
        """The cluster as the kubeconfig's own user (the tests' admin)."""
        return client.ApiClient(self.upstream)

    def _auth_headers(self) -> dict[str, str]:
        """The credentials the client library would send (a bearer token, refreshed by its
        hook when it comes from an exec plugin or a token file); client certificates are
        the TLS context's."""
        return {
            setting["key"]: setting["value"]
            for setting in self.upstream.auth_settings().values()
            if setting.get("in") == "header" and setting.get("value")
        }

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        headers.update(self._auth_headers())
        if self.impersonate:
            headers["Impersonate-User"] = self.impersonate
        body = await request.read()
        url = self.upstream.host.rstrip("/") + request.rel_url.raw_path_qs
        try:
            upstream = await self._session.request(
                request.method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                # a body sent without a type goes on without one: aiohttp would call it
                # application/octet-stream, which the API server refuses (415)
                skip_auto_headers=("Content-Type",),
            )
        except aiohttp.ClientError as err:
            return status_response(503, f"pdwatch fault proxy: the cluster did not answer ({err})")
        async with upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _DROPPED},
            )
            await response.prepare(request)
            self._streams[response] = (request, upstream)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, aiohttp.ClientError):
                cut(request)
                return response
            finally:
                self._streams.pop(response, None)
            if request.transport is None or request.transport.is_closing():
                return response
            await response.write_eof()
            return response


def upstream_configuration(kubeconfig: str, context: str | None) -> client.Configuration:
    """The client configuration (address, TLS, credentials) a kubeconfig context names."""
    from kubernetes import config

    configuration = client.Configuration()
    config.load_kube_config(
        config_file=kubeconfig, context=context, client_configuration=configuration
    )
    return configuration
