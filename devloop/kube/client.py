"""A small async facade over the official `kubernetes` client's asyncio API
(`kubernetes.aio`: an aiohttp session, one pool of connections for the whole session).

No call and no stream runs on a thread: requests and long-lived streams (watches,
followed logs) are coroutines on pdwatch's event loop. Objects travel as plain dicts (the
raw JSON), never as the client's models: nothing is lost or rejected in translation, and
the loop and UI need no client types. So requests go by REST path through the client's
`rest_client` (its TLS, proxy and token handling), not through the typed methods, which
would build models. Every failure surfaces as a `KubeError` (errors.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from kubernetes import client
from kubernetes.aio import client as aio

from devloop.kube.errors import Conflict, KubeError, NotFound, Unreachable, from_status
from devloop.kube.wire import apply_body

APPLY = "application/apply-patch+yaml"
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
FIELD_MANAGER = "pdwatch"
PROXY_CONNECT_S = 5.0  # a pod proxy request's connection to the API server
NO_ANSWER = (aiohttp.ClientError, TimeoutError, OSError)  # what aiohttp raises for no answer


@dataclass(frozen=True)
class Kind:
    path: str  # the REST path of one object

    def object_path(self, namespace: str, name: str) -> str:
        return self.path.format(namespace=quote(namespace, safe=""), name=quote(name, safe=""))

    def collection_path(self, namespace: str) -> str:
        return self.path.rsplit("/", 1)[0].format(namespace=quote(namespace, safe=""))

    @property
    def api_version(self) -> str:
        """ "v1", "apps/v1": what an object of this kind says it is."""
        parts = self.path.split("/")
        return parts[2] if parts[1] == "api" else f"{parts[2]}/{parts[3]}"

    @property
    def resource(self) -> tuple[str, str]:
        """(plural, API group) as RBAC names them: ("deployments", "apps")."""
        parts = self.path.split("/")
        group = parts[2] if parts[1] == "apis" else ""
        return parts[-2], group


def _core(plural: str) -> str:
    return f"/api/v1/namespaces/{{namespace}}/{plural}/{{name}}"


def _group(group_version: str, plural: str) -> str:
    return f"/apis/{group_version}/namespaces/{{namespace}}/{plural}/{{name}}"


KINDS = {
    "ConfigMap": Kind(_core("configmaps")),
    "Secret": Kind(_core("secrets")),
    "Service": Kind(_core("services")),
    "Pod": Kind(_core("pods")),
    "Event": Kind(_core("events")),
    "Deployment": Kind(_group("apps/v1", "deployments")),
    "ReplicaSet": Kind(_group("apps/v1", "replicasets")),
    "CronJob": Kind(_group("batch/v1", "cronjobs")),
    "NetworkPolicy": Kind(_group("networking.k8s.io/v1", "networkpolicies")),
}


def data_values(manifest: dict[str, Any]) -> list[str]:
    """What an error about this object must not repeat: a ConfigMap's files, a Secret's
    values (base64 as sent, and decoded)."""
    values = [str(v) for v in (manifest.get("data") or {}).values()]
    if manifest.get("kind") == "Secret":
        for value in list(values):
            with contextlib.suppress(ValueError):
                values.append(base64.b64decode(value).decode("utf-8"))
    return values


def asyncio_client(configuration: client.Configuration) -> aio.ApiClient:
    """An asyncio client with what a kubeconfig set on `configuration` (the synchronous
    client's loader reads kubeconfigs as kubectl does; its token refresh hook, for exec
    plugins and expiring tokens, works on either kind of configuration)."""
    settings = aio.Configuration(host=configuration.host)
    settings.api_key = dict(configuration.api_key)
    settings.api_key_prefix = dict(configuration.api_key_prefix)
    settings.refresh_api_key_hook = configuration.refresh_api_key_hook
    for name in (
        "ssl_ca_cert",
        "cert_file",
        "key_file",
        "verify_ssl",
        "tls_server_name",
        "proxy",
        "username",
        "password",
    ):
        if hasattr(configuration, name):
            setattr(settings, name, getattr(configuration, name))
    settings.retries = None  # pdwatch's own policy retries (retry.py), never the client's
    # No credentials from ~/.netrc (kubectl sends none; aiohttp would read the file on a
    # thread for every request) and, as before the asyncio client, no proxy from the
    # environment: a kubeconfig's proxy-url is the proxy.
    settings.client_session_kwargs = {"trust_env": False}
    return aio.ApiClient(settings)


def _query(params: Iterable[tuple[str, Any]]) -> str:
    """URL query of the parameters that are set, named as the API names them."""
    pairs = []
    for name, value in params:
        if value is None or value == "":
            continue
        head, *rest = name.split("_")
        wire = head + "".join(part.capitalize() for part in rest)  # tail_lines → tailLines
        pairs.append((wire, "true" if value is True else "false" if value is False else value))
    return f"?{urlencode(pairs)}" if pairs else ""


def unreachable(exc: BaseException, doing: str) -> Unreachable:
    """No answer, said in the words a person knows (aiohttp's are about sockets); the
    original stays its cause, for the debug log's traceback (--log-file)."""
    error = Unreachable(f"{doing}: cluster unreachable: {_why(exc)}")
    error.__cause__ = exc
    return error


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {cause.reason or cause}"
        if cause.errno == errno.ECONNREFUSED or "Connect call failed" in str(cause):
            return "Connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "Remote end closed connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "Connection reset"
    text = str(exc).strip()
    return text[:300] if text else type(exc).__name__


class Kube:
    """One namespace's view of the cluster. Kubes made from one asyncio client (the
    session's workflows) share its connections; one made from a synchronous client or
    configuration (tests, benchmarks) gets a client of its own."""

    def __init__(
        self, api: aio.ApiClient | client.ApiClient | client.Configuration, namespace: str
    ) -> None:
        if isinstance(api, client.ApiClient):
            api = asyncio_client(api.configuration)
        elif isinstance(api, client.Configuration):
            api = asyncio_client(api)
        self.api_client: aio.ApiClient = api
        self.host = str(api.configuration.host).rstrip("/")
        self.namespace = namespace
        self.request_timeout: float = 15
        # (verb, resource, group) of every request made: what RBAC must allow (preflight)
        self.operations: set[tuple[str, str, str]] = set()
        # told of every write pdwatch makes (kind, name, the object; None: deleted), so
        # the session's caches hold pdwatch's own writes at once (informers.py)
        self.written: Callable[[str, str, dict[str, Any] | None], None] = lambda *_: None

    def _did(self, verb: str, kind: str, subresource: str = "") -> None:
        plural, group = KINDS[kind].resource
        self.operations.add((verb, f"{plural}/{subresource}" if subresource else plural, group))

    async def close(self) -> None:
        """Close the client's connections (all Kubes sharing it are done)."""
        await self.api_client.close()

    # --- plumbing ----------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        """The client's connection pool (made on first use, on the running loop, by the
        factory the client names for it)."""
        rest = self.api_client.rest_client
        if rest.pool_manager is None:
            rest.pool_manager = rest._create_pool_manager()
        session: aiohttp.ClientSession = rest.pool_manager
        return session

    async def _send(
        self,
        doing: str,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """The response to one request, whatever its status; only no answer raises."""
        sent = {**self.api_client.default_headers, **headers}
        await self.api_client.update_params_for_auth(sent, [], ["BearerToken"], path, method, body)
        settings = self.api_client.configuration
        extra: dict[str, Any] = {}
        if settings.proxy:
            extra["proxy"] = settings.proxy
            if settings.proxy_headers:
                extra["proxy_headers"] = settings.proxy_headers
        if settings.tls_server_name:
            extra["server_hostname"] = settings.tls_server_name
        try:
            return await self._session().request(
                method, f"{self.host}{path}", data=body, headers=sent, timeout=timeout, **extra
            )
        except NO_ANSWER as exc:
            raise unreachable(exc, doing) from exc

    @staticmethod
    async def _read(response: aiohttp.ClientResponse, doing: str) -> bytes:
        """The whole body, the connection then back in the pool."""
        try:
            return await response.read()
        except NO_ANSWER as exc:
            raise unreachable(exc, doing) from exc
        finally:
            response.release()

    async def _open(
        self,
        doing: str,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """The response to a request of the API's own, its body unread; a refusal raises."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        within = timeout or aiohttp.ClientTimeout(total=self.request_timeout)
        response = await self._send(doing, method, path, body, headers, within)
        if not 200 <= response.status <= 299:
            try:
                data = await self._read(response, doing)
            except Unreachable:  # the refusal is said without its body
                data = b""
            raise from_status(response.status, data, doing, response.reason or "", response.headers)
        return response

    async def _call(
        self,
        doing: str,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> Any:
        """One request's JSON answer (None for an empty body). `body`: bytes as they are,
        anything else as JSON."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        within = aiohttp.ClientTimeout(total=timeout or self.request_timeout)
        response = await self._open(doing, method, path, body, content_type, within)
        data = await self._read(response, doing)
        return json.loads(data) if data else None

    # --- objects -----------------------------------------------------------------------------

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply, forced: pdwatch owns the objects it renders. The body is
        written by wire.apply_body (the client's own serialisation escapes what go-yaml
        refuses)."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self._did("patch", kind)
        path = KINDS[kind].object_path(self.namespace, name)
        query = _query([("field_manager", FIELD_MANAGER), ("force", True)])
        try:
            result: dict[str, Any] = await self._call(
                f"apply {kind} {name}", "PATCH", path + query, apply_body(manifest), APPLY
            )
        except KubeError as exc:
            raise exc.scrubbed(data_values(manifest)) from None
        self.written(kind, name, result)
        return result

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._did("get", kind)
        path = KINDS[kind].object_path(self.namespace, name)
        try:
            result: dict[str, Any] = await self._call(f"get {kind} {name}", "GET", path)
        except NotFound:
            return None
        return result

    async def list(
        self,
        kind: str,
        label_selector: str = "",
        field_selector: str = "",
        limit: int | None = None,
    ) -> dict[str, Any]:
        """The list body (items and metadata.resourceVersion)."""
        self._did("list", kind)
        path = KINDS[kind].collection_path(self.namespace)
        query = _query(
            [
                ("label_selector", label_selector),
                ("field_selector", field_selector),
                ("limit", limit),
            ]
        )
        result: dict[str, Any] = await self._call(f"list {kind}", "GET", path + query)
        return result

    async def delete(self, kind: str, name: str) -> bool:
        """Delete; False when it was not there."""
        self._did("delete", kind)
        path = KINDS[kind].object_path(self.namespace, name)
        try:
            await self._call(f"delete {kind} {name}", "DELETE", path)
        except NotFound:
            self.written(kind, name, None)
            return False
        self.written(kind, name, None)
        return True

    async def patch(
        self, kind: str, name: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """A strategic merge patch (what `kubectl patch` sends)."""
        self._did("patch", kind)
        path = KINDS[kind].object_path(self.namespace, name)
        query = _query([("field_manager", FIELD_MANAGER)])
        result: dict[str, Any] = await self._call(
            f"patch {kind} {name}", "PATCH", path + query, body, STRATEGIC_MERGE, timeout
        )
        self.written(kind, name, result)
        return result

    # --- cluster-level -----------------------------------------------------------------------

    async def server_version(self) -> str:
        version = await self._call("reach the API server", "GET", "/version", timeout=5)
        return str((version or {}).get("gitVersion", ""))

    async def _exists(self, doing: str, path: str) -> bool:
        try:
            await self._call(doing, "GET", path, timeout=5)
        except NotFound:
            return False
        return True

    async def namespace_exists(self, name: str) -> bool:
        return await self._exists(f"get namespace {name}", f"/api/v1/namespaces/{quote(name)}")

    async def create_namespace(self, name: str) -> bool:
        """False when it exists already: made meanwhile by someone else (the other
        workflows of a session check and create it side by side)."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await self._call(f"create namespace {name}", "POST", "/api/v1/namespaces", body=body)
        except Conflict as exc:
            if exc.reason != "AlreadyExists":
                raise
            return False
        return True

    async def runtime_class_exists(self, name: str) -> bool:
        return await self._exists(
            f"get RuntimeClass {name}", f"/apis/node.k8s.io/v1/runtimeclasses/{quote(name)}"
        )

    async def can(self, verb: str, resource: str, group: str = "") -> bool:
        attributes = {"verb": verb, "resource": resource, "group": group}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {**attributes, "namespace": self.namespace}},
        }
        review = await self._call(
            f"check permission to {verb} {resource}",
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=body,
            timeout=5,
        )
        return bool(((review or {}).get("status") or {}).get("allowed"))

    # --- logs and the proxies ----------------------------------------------------------------

    def _log_path(self, pod: str) -> str:
        return f"{KINDS['Pod'].object_path(self.namespace, pod)}/log"

    async def pod_log(self, pod: str, **params: Any) -> str:
        self._did("get", "Pod", "log")
        doing = f"read the logs of {pod}"
        response = await self._open(doing, "GET", self._log_path(pod) + _query(params.items()))
        return (await self._read(response, doing)).decode("utf-8", "replace")

    # A pod just Ready is in its Service's endpoints only once the EndpointSlice controller
    # has written them, and a pod being replaced leaves them a moment after its engine
    # stopped (a real control plane takes tens of milliseconds, more when busy): "no
    # endpoints available" and "error trying to reach service" are waited out this long
    # before either is the answer.
    ENDPOINTS_WAIT_S = 3.0
    ENDPOINTS_SETTLING = ("no endpoints available", "error trying to reach service")

    async def proxy_post(self, service: str, port: int, path: str, body: Any) -> tuple[int, Any]:
        """POST through the API server's service proxy; (status, parsed JSON or text)."""
        self._did("create", "Service", "proxy")
        deadline = asyncio.get_running_loop().time() + self.ENDPOINTS_WAIT_S
        while True:
            status, answer = await self._proxy_post_once(service, port, path, body)
            waiting = status == 503 and any(m in str(answer) for m in self.ENDPOINTS_SETTLING)
            if not waiting or asyncio.get_running_loop().time() >= deadline:
                return status, answer
            await asyncio.sleep(0.1)

    async def _proxy_post_once(
        self, service: str, port: int, path: str, body: Any
    ) -> tuple[int, Any]:
        resource = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/services/"
        resource += f"{quote(service, safe='')}:{port}/proxy/{path.lstrip('/')}"
        status, _, data = await self._raw(
            f"POST {path} to service {service}",
            "POST",
            resource,
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "Accept": "application/json"},
            aiohttp.ClientTimeout(total=self.request_timeout),
        )
        text = data.decode("utf-8", "replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    async def pod_proxy(
        self,
        pod: str,
        port: int,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
        timeout: float = 120,
    ) -> tuple[int, str, bytes]:
        """Any request to one pod through the API server's pod proxy (`pods/NAME:PORT/
        proxy/PATH`): (status, content type, body)."""
        self._did("create", "Pod", "proxy")
        resource = f"/api/v1/namespaces/{quote(self.namespace, safe='')}/pods/"
        resource += f"{quote(pod, safe='')}:{port}/proxy/{path.lstrip('/')}"
        # an API server that cannot be reached is said within seconds; an answer may take
        # as long as the workflow runs
        within = aiohttp.ClientTimeout(total=None, sock_connect=PROXY_CONNECT_S, sock_read=timeout)
        return await self._raw(
            f"{method} {path} to pod {pod}", method, resource, body, headers, within
        )

    async def _raw(
        self,
        doing: str,
        method: str,
        resource: str,
        body: bytes,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[int, str, bytes]:
        """A request whose answer is the pod's, whatever its status: (status, content type,
        body). Only no answer raises."""
        response = await self._send(doing, method, resource, body or None, headers, timeout)
        data = await self._read(response, doing)
        return response.status, response.headers.get("Content-Type", ""), data

    # --- streams -----------------------------------------------------------------------------

    def watch(
        self,
        kind: str,
        resource_version: str,
        label_selector: str = "",
        field_selector: str = "",
        timeout_seconds: int = 300,
    ) -> LineStream:
        self._did("watch", kind)
        query = _query(
            [
                ("watch", True),
                ("resource_version", resource_version),
                ("allow_watch_bookmarks", True),
                ("label_selector", label_selector),
                ("field_selector", field_selector),
                ("timeout_seconds", timeout_seconds),
            ]
        )
        path = KINDS[kind].collection_path(self.namespace) + query
        return LineStream(self, path, f"watch {kind}")

    def follow_log(self, pod: str, **params: Any) -> LineStream:
        self._did("get", "Pod", "log")
        query = _query([("follow", True), *params.items()])
        return LineStream(self, self._log_path(pod) + query, f"follow the logs of {pod}")


END = object()
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=None)


class LineStream:
    """Lines of a long-lived HTTP response, read by a task of its own.

    `async for line in stream` yields decoded lines until the response ends; a failure to
    open or a dropped connection raises KubeError. `close()` from anywhere ends it.
    """

    def __init__(self, kube: Kube, path: str, doing: str) -> None:
        self.kube = kube
        self.path = path
        self.doing = doing
        self.closed = False
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump(), name=doing)

    async def _pump(self) -> None:
        response: aiohttp.ClientResponse | None = None
        try:
            response = await self.kube._open(self.doing, "GET", self.path, timeout=STREAM_TIMEOUT)
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if lines:  # one queue item per chunk, not per line: floods stay cheap
                    self.queue.put_nowait([line.decode("utf-8", "replace") for line in lines])
            if pending:
                self.queue.put_nowait([pending.decode("utf-8", "replace")])
            self.queue.put_nowait(END)
        except KubeError as exc:
            self.queue.put_nowait(END if self.closed else exc)
        except NO_ANSWER as exc:
            self.queue.put_nowait(END if self.closed else unreachable(exc, self.doing))
        finally:
            if response is not None:
                response.close()

    def close(self) -> None:
        """End the iteration now, also while the response is still being opened."""
        if not self.closed:
            self.queue.put_nowait(END)
        self.closed = True
        self.task.cancel()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        try:
            while True:
                item = await self.queue.get()
                if item is END:
                    return
                if isinstance(item, KubeError):
                    raise item
                assert isinstance(item, list)
                for n, line in enumerate(item, 1):
                    yield line
                    if n % 500 == 0:
                        await asyncio.sleep(0)  # let the UI breathe inside a long batch
        finally:
            self.close()
