"""The embedded API server's HTTP face (aiohttp): REST paths, discovery, watch and log
streams, the service proxy, and fault injection for reliability tests."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devloop.sim import openapi, resources, tables
from devloop.sim import patch as patch_module
from devloop.sim.errors import ApiError, bad_request, method_not_supported
from devloop.sim.faults import Faults, cut, inject, start_stream
from devloop.sim.params import query_bool
from devloop.sim.resources import Resource
from devloop.sim.selectors import field_matcher, label_matcher
from devloop.sim.store import Store, WatchEvent

if TYPE_CHECKING:
    from devloop.sim.api import Api
    from devloop.sim.cluster import EmbeddedCluster

log = logging.getLogger("devloop.sim")

NODE_SIDE = web.RequestKey("node_side", bool)  # the request came on the node's port
SERVER_VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0+pdwatch-embedded",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def json_response(body: Any, status: int = 200) -> web.Response:
    """`Content-Type: application/json` exactly, as the API server sends it (some clients,
    lightkube among them, compare the header whole)."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )


def error_response(err: ApiError) -> web.Response:
    return json_response(err.status(), err.code)


REASONS = {
    400: "BadRequest",
    404: "NotFound",
    409: "Conflict",
    422: "Invalid",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
    429: "TooManyRequests",
    401: "Unauthorized",
    403: "Forbidden",
}


def status_response(code: int, message: str, retry_after: int | None = None) -> web.Response:
    """A failure Status for `code`, with the reason the API server gives that code (and
    the Retry-After header it sends with a 429 or a 503, when given)."""
    response = error_response(ApiError(code, REASONS.get(code, "InternalError"), message))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def faults_of(cluster: EmbeddedCluster, request: web.Request) -> Faults:
    """The faults a request meets: the tests' for pdwatch's side, none for the node's."""
    return cluster.node_faults if request.get(NODE_SIDE) else cluster.faults


def make_app(cluster: EmbeddedCluster, node_side: bool = False) -> web.Application:
    """The API server; `node_side` is the port the cluster's node talks to, as a kubelet
    has its own connection to the API server: no test fault reaches it, no request of it
    is counted, and RBAC rules set for pdwatch do not apply to it."""
    faults = cluster.faults

    @web.middleware
    async def fault_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if node_side:
            request[NODE_SIDE] = True
        else:
            injected = await inject(faults, request)
            if injected is not None:
                return status_response(*injected)
            cluster.request_count += 1
            if cluster.request_log is not None:  # benchmarks: when each request arrived
                cluster.request_log.append(
                    (time.monotonic(), request.method, request.path, request.query_string)
                )
        try:
            return await handler(request)
        except ApiError as err:
            return error_response(err)
        except web.HTTPException:
            raise
        except ConnectionResetError:  # the client went away mid-stream (a closed log follow)
            return web.Response(status=499)  # never sent: nobody is there to read it
        except Exception as exc:  # a bug in the simulation: say so as the API server would
            log.exception("embedded cluster: %s %s failed", request.method, request.path)
            return error_response(
                ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")
            )

    app = web.Application(middlewares=[fault_middleware], client_max_size=8 * 1024 * 1024)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await dispatch(cluster, request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def dispatch(cluster: EmbeddedCluster, request: web.Request) -> web.StreamResponse:
    path = request.path.rstrip("/") or "/"
    if path in ("/healthz", "/livez", "/readyz"):
        return web.Response(text="ok")
    if path == "/version":
        return json_response(SERVER_VERSION)
    if path == "/api":
        return json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{cluster.port}"}
                ],
            }
        )
    if path == "/apis":
        return json_response(api_group_list())
    if path == "/openapi/v3":
        return json_response(openapi.index())
    if path.startswith("/openapi/v3/"):
        found = openapi.group_versions().get(path.removeprefix("/openapi/v3/"))
        if found is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(openapi.document(*found))
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    elif parts[0] == "apis" and len(parts) == 2:
        return json_response(api_group(parts[1]))
    else:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if not rest:
        return json_response(resource_list(group, version))
    return await resource_request(cluster, request, group, version, rest)


# --- discovery -----------------------------------------------------------------------------


def api_group(name: str) -> dict[str, Any]:
    versions = resources.groups().get(name)
    if not versions:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list() -> dict[str, Any]:
    groups = [api_group(name) for name in resources.groups()]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any]:
    found = [r for r in resources.RESOURCES if r.group == group and r.version == version]
    if not found:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    entries: list[dict[str, Any]] = []
    for r in found:
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        if r.has_status:
            entries.append(
                {
                    "name": f"{r.plural}/status",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        for sub in r.subresources:
            verbs = {
                "log": ["get"],
                "scale": ["get", "patch", "update"],
            }.get(sub, ["create", "delete", "get", "patch", "update"])
            entry = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": {"log": "Pod", "scale": "Scale"}.get(sub, "ServiceProxyOptions"),
                "verbs": verbs,
            }
            if sub == "scale":
                entry.update(group="autoscaling", version="v1")
            entries.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


# --- resources -----------------------------------------------------------------------------


@dataclass
class Target:
    resource: Resource
    namespace: str
    name: str
    subresource: str
    subpath: str


def parse_target(group: str, version: str, rest: list[str]) -> Target:
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    resource = resources.lookup(group, version, rest[0])
    if resource is None:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return Target(resource, namespace, name, sub, "/".join(rest[3:]))


def manager_of(request: web.Request) -> str:
    """Like the API server: fieldManager, else the user agent up to its first '/'."""
    explicit = request.query.get("fieldManager")
    if explicit:
        return explicit
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/")[0] or "unknown"


def list_body(resource: Resource, items: list[dict[str, Any]], rv: int) -> dict[str, Any]:
    for item in items:  # list items carry no kind/apiVersion on a real API server
        item.pop("kind", None)
        item.pop("apiVersion", None)
    return {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(rv)},
        "items": items,
    }


def success_status(resource: Resource, name: str, uid: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource.plural, "uid": uid}
    if resource.group:
        details["group"] = resource.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


PROTOBUF = "application/vnd.kubernetes.protobuf"
UNSUPPORTED_SUBRESOURCES = {"exec": "exec", "attach": "attach", "portforward": "port-forward"}


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.headers.get("Content-Type", "").startswith(PROTOBUF):
        # A real API server decodes protobuf too; this one only JSON (and YAML for apply).
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the embedded cluster accepts JSON bodies, not {PROTOBUF} (kubectl's typed "
            "`create` commands send protobuf); write the object as YAML instead, e.g. "
            "`kubectl create deployment NAME --image IMAGE --dry-run=client -o yaml | "
            "kubectl apply -f -`",
        )
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise bad_request(f"Object 'Kind' is missing in '{raw[:80]!r}': {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    return body


def authorizer(api: Api, request: web.Request) -> Callable[[str, Resource, str, str], None]:
    """RBAC as set for pdwatch; the node's requests are the node's (the Node authorizer)."""
    if request.get(NODE_SIDE):
        return lambda *_: None
    return api.authorize


async def resource_request(
    cluster: EmbeddedCluster, request: web.Request, group: str, version: str, rest: list[str]
) -> web.StreamResponse:
    t = parse_target(group, version, rest)
    api, store = cluster.api, cluster.store
    authorize = authorizer(api, request)
    method = request.method
    query = request.query
    dry_run = "All" in query.getall("dryRun", [])
    if t.resource.kind == "SelfSubjectAccessReview":
        if method != "POST":
            raise method_not_supported(t.resource, method.lower())
        body = await read_json(request)
        attrs = (body.get("spec") or {}).get("resourceAttributes") or {}
        allowed = api.allowed(attrs.get("verb", ""), attrs.get("resource", ""))
        body["status"] = {"allowed": allowed}
        if not allowed:
            body["status"]["reason"] = "denied by the embedded cluster's test settings"
        return json_response(body, 201)
    if t.subresource == "log" and t.resource.kind == "Pod":
        authorize("get", t.resource, t.namespace, t.name)
        return await cluster.forwarder.log(
            request, faults_of(cluster, request), t.namespace, t.name
        )
    if t.subresource == "proxy" and t.resource.kind == "Service":
        return await cluster.forwarder.service(request, t.namespace, t.name, t.subpath)
    if t.subresource == "proxy" and t.resource.kind == "Pod":
        return await cluster.forwarder.pod(request, t.namespace, t.name, t.subpath)
    if t.subresource in UNSUPPORTED_SUBRESOURCES and t.resource.kind == "Pod":
        raise ApiError(
            400,
            "BadRequest",
            "the embedded cluster's node runs engines as processes, not containers, so "
            f"pods/{t.subresource} (kubectl "
            f"{UNSUPPORTED_SUBRESOURCES[t.subresource]}) is not available; the workflow "
            "answers through the service proxy instead: kubectl get --raw "
            f"/api/v1/namespaces/{t.namespace}/services/SERVICE:8080/proxy/health",
        )
    if t.subresource == "scale" and t.resource.kind in ("Deployment", "ReplicaSet"):
        return await scale_request(cluster, request, t)
    if t.subresource and t.subresource != "status":
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    if method == "GET":
        if not t.name:
            return await list_or_watch(cluster, request, t)
        authorize("get", t.resource, t.namespace, t.name)
        obj = store.get(t.resource, t.namespace, t.name)
        table_version = tables.wanted_table_version(request.headers.get("Accept", ""))
        if table_version:
            rv = obj["metadata"]["resourceVersion"]
            include = query.get("includeObject", "Metadata")
            return json_response(tables.table(t.resource.kind, [obj], table_version, rv, include))
        return json_response(obj)
    if method == "POST":
        if t.name:
            raise method_not_supported(t.resource, "create")
        authorize("create", t.resource, t.namespace, "")
        obj = api.create(
            t.resource, t.namespace, await read_json(request), manager_of(request), dry_run
        )
        return json_response(obj, 201)
    if method == "PUT":
        authorize("update", t.resource, t.namespace, t.name)
        obj = api.update(
            t.resource,
            t.namespace,
            t.name,
            await read_json(request),
            manager_of(request),
            t.subresource,
            dry_run,
        )
        return json_response(obj)
    if method == "PATCH":
        authorize("patch", t.resource, t.namespace, t.name)
        content_type = request.headers.get("Content-Type", "")
        is_apply = content_type.startswith("application/apply-patch")
        existed = store.find(t.resource, t.namespace, t.name) is not None
        if is_apply and not existed:
            authorize("create", t.resource, t.namespace, t.name)
        manager = query.get("fieldManager") if is_apply else manager_of(request)
        obj = api.patch(
            t.resource,
            t.namespace,
            t.name,
            content_type,
            await request.read(),
            manager,
            query_bool(query, "force"),
            t.subresource,
            dry_run,
        )
        return json_response(obj, 201 if is_apply and not existed else 200)
    if method == "DELETE":
        if not t.name:
            authorize("deletecollection", t.resource, t.namespace, "")
            matches = label_matcher(query.get("labelSelector"))
            for obj in store.list(t.resource, t.namespace, matches):
                api.delete(t.resource, t.namespace, obj["metadata"]["name"])
            return json_response(success_status(t.resource, "", ""))
        authorize("delete", t.resource, t.namespace, t.name)
        options: dict[str, Any] = {}
        raw = await request.read()
        if raw:
            try:
                options = json.loads(raw) or {}  # DeleteOptions in the body (kubectl)
            except ValueError:
                options = {}
        grace = query.get("gracePeriodSeconds") or options.get("gracePeriodSeconds")
        policy = query.get("propagationPolicy") or options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = policy or "Orphan"
        deleted = api.delete(
            t.resource,
            t.namespace,
            t.name,
            int(grace) if grace is not None else None,
            policy or "Background",
        )
        if deleted["metadata"].get("deletionTimestamp"):
            # still there (a grace period or finalizers): the object, as the registry's
            # Delete returns it when the deletion is not immediate
            return json_response(deleted)
        return json_response(success_status(t.resource, t.name, deleted["metadata"]["uid"]))
    raise method_not_supported(t.resource, method.lower())


def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling/v1 Scale of a Deployment or ReplicaSet (registry/apps/deployment
    ScaleREST: spec.replicas, and status.selector as a label selector string)."""
    meta = obj["metadata"]
    labels = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": obj["spec"].get("replicas", 1)},
        "status": {
            "replicas": (obj.get("status") or {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


async def scale_request(
    cluster: EmbeddedCluster, request: web.Request, t: Target
) -> web.StreamResponse:
    """GET, PUT and PATCH of the scale subresource (kubectl scale patches it)."""
    api = cluster.api
    authorizer(api, request)(
        "get" if request.method == "GET" else "update", t.resource, t.namespace, t.name
    )
    obj = cluster.store.get(t.resource, t.namespace, t.name)
    if request.method == "GET":
        return json_response(scale_of(obj))
    current = scale_of(obj)
    if request.method == "PUT":
        wanted = await read_json(request)
    elif request.method == "PATCH":
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            body = json.loads(raw or b"{}")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        if content_type == "application/json-patch+json":
            wanted = patch_module.json_patch(current, body)
        else:
            wanted = patch_module.merge_patch(current, body)
    else:
        raise method_not_supported(t.resource, request.method.lower())
    replicas = (wanted.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(
            422, "Invalid", "spec.replicas: Invalid value: must be a non-negative integer"
        )
    obj["spec"]["replicas"] = replicas
    updated = api.update(t.resource, t.namespace, t.name, obj, manager_of(request), "scale")
    return json_response(scale_of(updated))


BOOKMARK_EVERY_S = 60.0  # storage/cacher: bookmarkFrequency


def bookmark_time(now: float, deadline: float) -> float:
    """When a watcher that allows bookmarks gets the next one (cacher.go
    nextBookmarkTime): every minute, and once 2 s before the watch's timeout."""
    before_end = deadline - 2.0
    return min(now + BOOKMARK_EVERY_S, before_end if before_end > now else now + BOOKMARK_EVERY_S)


def bookmark_line(resource: Resource, rv: int) -> bytes:
    obj = {
        "kind": resource.kind,
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(rv)},
    }
    return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"


async def list_or_watch(
    cluster: EmbeddedCluster, request: web.Request, t: Target
) -> web.StreamResponse:
    query = request.query
    labels = label_matcher(query.get("labelSelector"))
    fields = field_matcher(query.get("fieldSelector"))

    def matches(obj: dict[str, Any]) -> bool:
        return labels(obj) and fields(obj)

    if query_bool(query, "watch"):
        authorizer(cluster.api, request)("watch", t.resource, t.namespace, "")
        return await watch(cluster, request, t, matches)
    authorizer(cluster.api, request)("list", t.resource, t.namespace, "")
    limit, after = paging(query)
    table_version = tables.wanted_table_version(request.headers.get("Accept", ""))
    continue_token = ""
    remaining: int | None = 0
    if limit:
        filtered = bool(query.get("labelSelector") or query.get("fieldSelector"))
        items, remaining, last = cluster.store.page(
            t.resource, t.namespace, matches if filtered else None, limit, after
        )
        continue_token = encode_continue(last, cluster.store.rv) if last else ""
    else:
        entries = cluster.store.entries(t.resource, t.namespace)
        if not table_version and len(entries) > STREAMED_LIST:
            return await stream_list(request, t.resource, entries, matches, cluster.store.rv)
        items = cluster.store.list(t.resource, t.namespace, matches)
    if table_version:
        include = query.get("includeObject", "Metadata")
        rv = str(cluster.store.rv)
        return json_response(tables.table(t.resource.kind, items, table_version, rv, include))
    body = list_body(t.resource, items, cluster.store.rv)
    if continue_token:
        body["metadata"]["continue"] = continue_token
        if remaining is not None:
            body["metadata"]["remainingItemCount"] = remaining
    return json_response(body)


# A list longer than this is sent as it is encoded, a chunk at a time, letting other
# requests in between (kube-apiserver encodes large lists as a stream since 1.33): one
# large list blocked every other request for seconds (/version took 7.3 s).
STREAMED_LIST = 500
STREAM_CHUNK_BYTES = 256 * 1024


async def stream_list(
    request: web.Request,
    resource: Resource,
    entries: list[Any],
    matches: Callable[[dict[str, Any]], bool],
    rv: int,
) -> web.StreamResponse:
    """The list body of `list_body`, from a snapshot of the store's entries, encoded and
    written a chunk at a time."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    head = json.dumps(list_body(resource, [], rv)).encode("utf-8")
    assert head.endswith(b"[]}")
    parts, size, first = [head[: -len(b"]}")]], 0, True
    for entry in entries:
        obj = Store.decoded(entry)
        if not matches(obj):
            continue
        item = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        data = json.dumps(item).encode("utf-8")
        parts.append(data if first else b", " + data)
        first, size = False, size + len(data)
        if size >= STREAM_CHUNK_BYTES:
            await response.write(b"".join(parts))
            parts, size = [], 0
            await asyncio.sleep(0)  # the other requests' turn
    parts.append(b"]}")
    await response.write(b"".join(parts))
    await response.write_eof()
    return response


def paging(query: Any) -> tuple[int, tuple[str, ...] | None]:
    """`limit` and `continue` of a chunked list (apiserver's ListOptions; a limit of 0 or
    none means everything). The token is opaque to clients: here base64 JSON of the last
    key given. Unlike etcd, the embedded store keeps no snapshot: later pages show the
    objects as they are when asked for."""
    raw_limit = query.get("limit", "")
    try:
        limit = max(0, int(raw_limit)) if raw_limit else 0
    except ValueError:
        raise bad_request(f"invalid limit {raw_limit!r}") from None
    token = query.get("continue", "")
    if not token:
        return limit, None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        return limit, tuple(decoded["start"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion"
        ) from None


def encode_continue(last: tuple[str, ...], rv: int) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


async def watch(
    cluster: EmbeddedCluster,
    request: web.Request,
    t: Target,
    matches: Callable[[dict[str, Any]], bool],
) -> web.StreamResponse:
    query = request.query
    rv_text = query.get("resourceVersion", "")
    since = int(rv_text) if rv_text.isdigit() else None
    timeout = float(query.get("timeoutSeconds") or 1800)
    # Streaming lists (client-go's WatchListClient, on in kubectl 1.37): the current objects
    # as ADDED, then a BOOKMARK annotated k8s.io/initial-events-end, then changes.
    initial_events = query_bool(query, "sendInitialEvents")
    if initial_events:
        if (
            query.get("resourceVersionMatch") != "NotOlderThan"
            or query.get("allowWatchBookmarks") != "true"
        ):
            raise ApiError(
                422,
                "Invalid",
                "sendInitialEvents requires "
                "resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true",
            )
        since = None
    try:
        watcher = cluster.store.watch(t.resource, t.namespace, matches, since)
    except ApiError as err:
        # apiserver storage/cacher Watch: once the resourceVersion has parsed, "other errors
        # must fail with a watch event of type ERROR, rather than a directly returned error"
        # (newErrWatcher): an expired one (410) and one not reached yet (504) alike.
        faults = faults_of(cluster, request)
        response = await start_stream(request, faults)
        await response.write(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
        faults.streams.discard(response)
        return response
    faults = faults_of(cluster, request)
    response = await start_stream(request, faults)
    deadline = time.monotonic() + timeout
    table_version = tables.wanted_table_version(request.headers.get("Accept", ""))
    sent_columns = False

    def encode(event: WatchEvent) -> bytes:
        """One watch line; for `kubectl get -w` each object is a one-row Table, the column
        definitions only in the first (apiserver's watch encoder sets NoHeaders after it)."""
        nonlocal sent_columns
        obj = event.object
        if table_version and event.type in ("ADDED", "MODIFIED", "DELETED"):
            include = request.query.get("includeObject", "Metadata")
            rv = obj["metadata"].get("resourceVersion", "")
            obj = tables.table(t.resource.kind, [obj], table_version, rv, include, not sent_columns)
            sent_columns = True
        return (json.dumps({"type": event.type, "object": obj}) + "\n").encode()

    try:
        if initial_events:
            while not watcher.queue.empty():
                event = watcher.queue.get_nowait()
                if event is not None:
                    await response.write(encode(event))
            bookmark = {
                "kind": t.resource.kind,
                "apiVersion": t.resource.api_version,
                "metadata": {
                    "resourceVersion": str(cluster.store.rv),
                    "annotations": {"k8s.io/initial-events-end": "true"},
                },
            }
            await response.write(
                json.dumps({"type": "BOOKMARK", "object": bookmark}).encode() + b"\n"
            )
        bookmarks = query_bool(request.query, "allowWatchBookmarks")
        next_bookmark = bookmark_time(time.monotonic(), deadline)
        while True:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                break
            wait = min(remaining, next_bookmark - now) if bookmarks else remaining
            try:
                event = await asyncio.wait_for(watcher.queue.get(), max(0.0, wait))
            except TimeoutError:
                if bookmarks and time.monotonic() >= next_bookmark:
                    await response.write(bookmark_line(t.resource, cluster.store.rv))
                    next_bookmark = bookmark_time(time.monotonic(), deadline)
                continue
            if event is None:  # dropped by a fault or by shutdown
                cut(request)
                break
            await response.write(encode(event))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        cluster.store.stop_watch(watcher)
        faults.streams.discard(response)
    return response
