"""A small async facade over the official `kubernetes` client.

Blocking calls run in worker threads; long-lived streams (watches, followed logs) get
threads of their own, so they never starve the shared executor. Objects travel as plain
dicts (the raw JSON), never as the client's models: nothing is lost or rejected in
translation, and the loop and UI need no client types. Every failure surfaces as a
`KubeError` (errors.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devloop.kube.errors import Conflict, KubeError, NotFound, from_exception
from devloop.kube.wire import apply_body

T = TypeVar("T")
APPLY = "application/apply-patch+yaml"
FIELD_MANAGER = "pdwatch"
PROXY_CONNECT_S = 5.0  # a pod proxy request's connection to the API server


@dataclass(frozen=True)
class Kind:
    api: str  # the client class: CoreV1Api, AppsV1Api, BatchV1Api
    suffix: str  # method suffix: config_map → read_namespaced_config_map
    path: str  # the REST path of one object, for requests the typed methods cannot send

    def object_path(self, namespace: str, name: str) -> str:
        return self.path.format(namespace=quote(namespace, safe=""), name=quote(name, safe=""))

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
    "ConfigMap": Kind("CoreV1Api", "config_map", _core("configmaps")),
    "Secret": Kind("CoreV1Api", "secret", _core("secrets")),
    "Service": Kind("CoreV1Api", "service", _core("services")),
    "Pod": Kind("CoreV1Api", "pod", _core("pods")),
    "Event": Kind("CoreV1Api", "event", _core("events")),
    "Deployment": Kind("AppsV1Api", "deployment", _group("apps/v1", "deployments")),
    "ReplicaSet": Kind("AppsV1Api", "replica_set", _group("apps/v1", "replicasets")),
    "CronJob": Kind("BatchV1Api", "cron_job", _group("batch/v1", "cronjobs")),
    "NetworkPolicy": Kind(
        "NetworkingV1Api", "network_policy", _group("networking.k8s.io/v1", "networkpolicies")
    ),
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


def _json(response: Any) -> Any:
    return json.loads(response.data) if response.data else None


class Kube:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)
        self.auth = client.AuthorizationV1Api(api_client)
        self.node = client.NodeV1Api(api_client)
        self.request_timeout: float = 15
        # (verb, resource, group) of every request made: what RBAC must allow (preflight)
        self.operations: set[tuple[str, str, str]] = set()

    def _did(self, verb: str, kind: str, subresource: str = "") -> None:
        plural, group = KINDS[kind].resource
        self.operations.add((verb, f"{plural}/{subresource}" if subresource else plural, group))

    # --- plumbing ----------------------------------------------------------------------------

    async def call(self, doing: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except Exception as exc:
            raise from_exception(exc, doing) from None

    def method(self, kind: str, verb: str) -> Callable[..., Any]:
        spec = KINDS[kind]
        api = {
            "CoreV1Api": self.core,
            "AppsV1Api": self.apps,
            "BatchV1Api": self.batch,
            "NetworkingV1Api": self.networking,
        }[spec.api]
        return getattr(api, f"{verb}_namespaced_{spec.suffix}")  # type: ignore[no-any-return]

    # --- objects -----------------------------------------------------------------------------

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply, forced: pdwatch owns the objects it renders.

        The body is sent as bytes written by wire.apply_body (the typed patch methods take
        only a dict, which the client would escape into what go-yaml refuses)."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        self._did("patch", kind)
        path = KINDS[kind].object_path(self.namespace, name)
        body = apply_body(manifest)

        def send() -> Any:
            request = self.api_client.param_serialize(
                method="PATCH",
                resource_path=path,
                query_params=[("fieldManager", FIELD_MANAGER), ("force", True)],
                header_params={"Content-Type": APPLY, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api_client.call_api(*request, _request_timeout=self.request_timeout)
            response.read()
            if not 200 <= response.status <= 299:
                raise ApiException.from_response(http_resp=response, body=None, data=None)
            return _json(response)

        try:
            result: dict[str, Any] = await self.call(f"apply {kind} {name}", send)
        except KubeError as exc:
            raise exc.scrubbed(data_values(manifest)) from None
        return result

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        self._did("get", kind)
        read = self.method(kind, "read")
        try:
            result: dict[str, Any] = await self.call(
                f"get {kind} {name}",
                lambda: _json(
                    read(
                        name,
                        self.namespace,
                        _preload_content=False,
                        _request_timeout=self.request_timeout,
                    )
                ),
            )
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
        list_fn = self.method(kind, "list")
        result: dict[str, Any] = await self.call(
            f"list {kind}",
            lambda: _json(
                list_fn(
                    self.namespace,
                    label_selector=label_selector,
                    field_selector=field_selector,
                    limit=limit,
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                )
            ),
        )
        return result

    async def delete(self, kind: str, name: str) -> bool:
        """Delete; False when it was not there."""
        self._did("delete", kind)
        delete = self.method(kind, "delete")
        try:
            await self.call(
                f"delete {kind} {name}",
                lambda: delete(
                    name,
                    self.namespace,
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                ),
            )
        except NotFound:
            return False
        return True

    async def patch(
        self, kind: str, name: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """A strategic merge patch (what `kubectl patch` sends)."""
        self._did("patch", kind)
        patch = self.method(kind, "patch")
        result: dict[str, Any] = await self.call(
            f"patch {kind} {name}",
            lambda: _json(
                patch(
                    name,
                    self.namespace,
                    body,
                    field_manager=FIELD_MANAGER,
                    _preload_content=False,
                    _request_timeout=timeout or self.request_timeout,
                )
            ),
        )
        return result

    # --- cluster-level -----------------------------------------------------------------------

    async def server_version(self) -> str:
        version = await self.call(
            "reach the API server",
            lambda: client.VersionApi(self.api_client).get_code(_request_timeout=5),
        )
        return str(version.git_version)

    async def namespace_exists(self, name: str) -> bool:
        try:
            await self.call(
                f"get namespace {name}",
                lambda: self.core.read_namespace(name, _preload_content=False, _request_timeout=5),
            )
        except NotFound:
            return False
        return True

    async def create_namespace(self, name: str) -> bool:
        """False when it exists already: made meanwhile by someone else (the other
        workflows of a session check and create it side by side)."""
        try:
            await self.call(
                f"create namespace {name}",
                lambda: self.core.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=name)),
                    _preload_content=False,
                ),
            )
        except Conflict as exc:
            if exc.reason != "AlreadyExists":
                raise
            return False
        return True

    async def runtime_class_exists(self, name: str) -> bool:
        try:
            await self.call(
                f"get RuntimeClass {name}",
                lambda: self.node.read_runtime_class(
                    name, _preload_content=False, _request_timeout=5
                ),
            )
        except NotFound:
            return False
        return True

    async def can(self, verb: str, resource: str, group: str = "") -> bool:
        body = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource=resource, group=group, namespace=self.namespace
                )
            )
        )
        review = await self.call(
            f"check permission to {verb} {resource}",
            lambda: _json(
                self.auth.create_self_subject_access_review(
                    body, _preload_content=False, _request_timeout=5
                )
            ),
        )
        return bool((review.get("status") or {}).get("allowed"))

    # --- logs and the service proxy ------------------------------------------------------------

    async def pod_log(self, pod: str, **params: Any) -> str:
        self._did("get", "Pod", "log")

        def read() -> str:
            response: Any = self.core.read_namespaced_pod_log(
                pod,
                self.namespace,
                _preload_content=False,
                _request_timeout=self.request_timeout,
                **params,
            )
            return bytes(response.data).decode("utf-8", "replace")

        return await self.call(f"read the logs of {pod}", read)

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
        deadline = time.monotonic() + self.ENDPOINTS_WAIT_S
        while True:
            status, answer = await self._proxy_post_once(service, port, path, body)
            waiting = status == 503 and any(m in str(answer) for m in self.ENDPOINTS_SETTLING)
            if not waiting or time.monotonic() >= deadline:
                return status, answer
            await asyncio.sleep(0.1)

    async def _proxy_post_once(
        self, service: str, port: int, path: str, body: Any
    ) -> tuple[int, Any]:
        resource = f"/api/v1/namespaces/{self.namespace}/services/{service}:{port}/proxy/"
        resource += path.lstrip("/")
        url = f"{self.api_client.configuration.host}{resource}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self.api_client.update_params_for_auth(headers, [], ["BearerToken"], resource, "POST", body)

        def post() -> tuple[int, Any]:
            response = self.api_client.rest_client.pool_manager.request(
                "POST", url, body=json.dumps(body), headers=headers, timeout=self.request_timeout
            )
            text = response.data.decode("utf-8", "replace")
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

        return await self.call(f"POST {path} to service {service}", post)

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
        resource = f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{port}/proxy/"
        resource += path.lstrip("/")
        url = f"{self.api_client.configuration.host}{resource}"
        sent = dict(headers)
        self.api_client.update_params_for_auth(sent, [], ["BearerToken"], resource, method, body)

        def send() -> tuple[int, str, bytes]:
            response = self.api_client.rest_client.pool_manager.request(
                method,
                url,
                body=body or None,
                headers=sent,
                # an API server that cannot be reached is said within seconds; an answer
                # may take as long as the workflow runs
                timeout=urllib3.Timeout(connect=PROXY_CONNECT_S, read=timeout),
                retries=False,
            )
            return response.status, response.headers.get("Content-Type", ""), response.data

        return await self.call(f"{method} {path} to pod {pod}", send)

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
        list_fn = self.method(kind, "list")
        return LineStream(
            lambda: list_fn(
                self.namespace,
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                label_selector=label_selector,
                field_selector=field_selector,
                timeout_seconds=timeout_seconds,
                _preload_content=False,
            ),
            f"watch {kind}",
        )

    def follow_log(self, pod: str, **params: Any) -> LineStream:
        self._did("get", "Pod", "log")
        return LineStream(
            lambda: self.core.read_namespaced_pod_log(
                pod, self.namespace, follow=True, _preload_content=False, **params
            ),
            f"follow the logs of {pod}",
        )


END = object()


class LineStream:
    """Lines of a long-lived HTTP response, read on a thread of their own.

    `async for line in stream` yields decoded lines until the response ends; a failure to
    open or a dropped connection raises KubeError. `close()` from anywhere ends it.
    """

    def __init__(self, open_response: Callable[[], Any], doing: str) -> None:
        self.open_response = open_response
        self.doing = doing
        self.response: Any = None
        self.closed = False
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.thread = threading.Thread(target=self._pump, daemon=True, name=doing)
        self.thread.start()

    def _put(self, item: object) -> None:
        # After the event loop has closed (pdwatch is exiting) nobody is listening: a line
        # read in that moment is dropped instead of ending the thread with a traceback.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _pump(self) -> None:
        try:
            self.response = self.open_response()
            if self.closed:
                self.response.close()
                return
            pending = b""
            for chunk in self.response.stream(65536, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if lines:  # one loop callback per chunk, not per line: floods stay cheap
                    self._put([line.decode("utf-8", "replace") for line in lines])
            if pending:
                self._put([pending.decode("utf-8", "replace")])
            self._put(END)
        except Exception as exc:
            self._put(END if self.closed else from_exception(exc, self.doing))
        finally:
            if self.response is not None:
                self.response.release_conn()

    def close(self) -> None:
        """End the iteration now, also while the response is still being opened (the
        thread may be blocked for headers that never come: it ends on its own later)."""
        if not self.closed:
            self._put(END)
        self.closed = True
        if self.response is not None:
            try:
                self.response.shutdown()
            except Exception:
                with contextlib.suppress(Exception):
                    self.response.close()

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
