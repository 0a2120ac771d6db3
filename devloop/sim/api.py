"""The API server's write and read semantics on top of the store.

Validation (422), admission (RuntimeClass, forbidden verbs: 403), optimistic concurrency
(409 on a stale resourceVersion), status subresources, `metadata.generation`,
managedFields for every write, server-side apply, no-op writes that change nothing
(same resourceVersion, no watch event), graceful pod deletion, and garbage collection of
dependents through ownerReferences. Controllers write through here too, like real ones.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from devloop.sim import fieldmanager, patch, resources, yamlbody
from devloop.sim.defaults import apply_defaults
from devloop.sim.errors import (
    MODIFIED,
    ApiError,
    bad_request,
    conflict,
    forbidden,
    invalid,
    unsupported_media_type,
)
from devloop.sim.resources import Resource
from devloop.sim.store import Store, now_rfc3339
from devloop.sim.validation import validate

NAMESPACES = resources.of_kind("v1", "Namespace")
PODS = resources.of_kind("v1", "Pod")
RUNTIME_CLASSES = resources.of_kind("node.k8s.io/v1", "RuntimeClass")
EVENTS = resources.of_kind("v1", "Event")

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"

SYSTEM_META = (
    "uid",
    "creationTimestamp",
    "generation",
    "resourceVersion",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def random_suffix(n: int = 5) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.String: no vowels, no confusables
    return "".join(random.choice(alphabet) for _ in range(n))


class Api:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.forbidden: set[tuple[str, str]] = set()  # (verb, plural) refused with 403
        # Called when a pod is deleted gracefully; the kubelet finishes the deletion.
        self.on_pod_delete: Callable[[dict[str, Any]], bool] | None = None

    # --- authorization ----------------------------------------------------------------------

    def authorize(self, verb: str, resource: Resource, namespace: str, name: str) -> None:
        if (verb, resource.plural) in self.forbidden:
            who = 'User "pdwatch-embedded"'
            scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            group = f'"{resource.group}"' if resource.group else '""'
            raise ApiError(
                403,
                "Forbidden",
                f"{resource.group_resource}{f' {json.dumps(name)}' if name else ''} is "
                f'forbidden: {who} cannot {verb} resource "{resource.plural}" in API '
                f"group {group}{scope}",
                {"name": name, "kind": resource.plural, "group": resource.group},
            )

    def allowed(self, verb: str, plural: str) -> bool:
        return (verb, plural) not in self.forbidden

    # --- create -----------------------------------------------------------------------------

    def create(
        self,
        resource: Resource,
        namespace: str,
        body: dict[str, Any],
        manager: str,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = self._prepare_body(resource, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        for key in SYSTEM_META:
            meta.pop(key, None)
        meta["uid"] = str(uuid.uuid4())  # FillObjectMetaSystemFields: before defaulting
        if resource.has_status and resource.kind not in ("Namespace", "Node"):
            obj["status"] = {}  # PrepareForCreate resets it; an empty struct is still sent
        if resource.kind == "Pod":  # the pod strategy's PrepareForCreate
            obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj)}
        if resource.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        self._check_namespace(resource, namespace)
        fieldmanager.record_update(None, obj, manager, resource.api_version, now_rfc3339())
        apply_defaults(resource.kind, obj)
        causes = validate(resource, obj, None)
        if causes:
            raise invalid(resource, meta.get("name", ""), causes)
        self._admit(resource, obj)
        if dry_run:
            return obj
        return self.store.create(resource, obj)

    def _prepare_body(
        self, resource: Resource, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        kind, version = obj.get("kind"), obj.get("apiVersion")
        if (kind and kind != resource.kind) or (version and version != resource.api_version):
            raise bad_request(
                f"the API version in the data ({version}) does not match the "
                f"expected API version ({resource.api_version})"
                if version != resource.api_version
                else f"the kind in the data ({kind}) does not match the expected kind "
                f"({resource.kind})"
            )
        obj["kind"], obj["apiVersion"] = resource.kind, resource.api_version
        meta = obj.setdefault("metadata", {})
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the "
                    "namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return obj

    def _check_namespace(self, resource: Resource, namespace: str) -> None:
        if resource.namespaced:
            ns = self.store.find(NAMESPACES, "", namespace)
            if ns is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            if ns["metadata"].get("deletionTimestamp"):
                raise forbidden(
                    resource,
                    "",
                    f"unable to create new content in namespace "
                    f"{namespace} because it is being terminated",
                )

    def _admit(self, resource: Resource, obj: dict[str, Any]) -> None:
        """Admission the real API server runs for pods (RuntimeClass admission plugin)."""
        if resource.kind != "Pod":
            return
        runtime_class = (obj.get("spec") or {}).get("runtimeClassName")
        if runtime_class and self.store.find(RUNTIME_CLASSES, "", runtime_class) is None:
            name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
            raise forbidden(
                resource, name, f'pod rejected: RuntimeClass "{runtime_class}" not found'
            )

    # --- update -----------------------------------------------------------------------------

    def update(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        body: dict[str, Any],
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        old = self.store.get(resource, namespace, name)
        obj = self._prepare_body(resource, namespace, body)
        sent_rv = obj["metadata"].get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(resource, name, MODIFIED)
        if obj["metadata"].get("name", name) != name:
            raise bad_request(
                "the name of the object "
                f"({obj['metadata'].get('name')}) does not match the name on the "
                f"URL ({name})"
            )
        return self._write(resource, old, obj, manager, subresource, dry_run)

    def _write(
        self,
        resource: Resource,
        old: dict[str, Any],
        obj: dict[str, Any],
        manager: str,
        subresource: str,
        dry_run: bool,
        applied: bool = False,
    ) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        for key in SYSTEM_META:
            if key == "managedFields" and applied:
                continue  # computed by the apply itself
            if key in old["metadata"]:
                meta[key] = copy.deepcopy(old["metadata"][key])
            else:
                meta.pop(key, None)
        meta["name"] = old["metadata"]["name"]
        if subresource == "status":
            new_status = obj.get("status")
            obj = copy.deepcopy(old)
            if new_status is not None:
                obj["status"] = new_status
        elif resource.has_status:
            if "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
            else:
                obj.pop("status", None)
        if not applied:
            fieldmanager.record_update(
                old, obj, manager, resource.api_version, now_rfc3339(), subresource
            )
        apply_defaults(resource.kind, obj)
        if resource.has_generation and subresource != "status" and _spec_of(obj) != _spec_of(old):
            meta["generation"] = old["metadata"].get("generation", 1) + 1
        causes = validate(resource, obj, old)
        if causes:
            raise invalid(resource, meta["name"], causes)
        if _same(old, obj):
            return old
        if dry_run:
            return obj
        return self.store.replace(resource, obj)

    # --- patch ------------------------------------------------------------------------------

    def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        content_type: str,
        raw: bytes,
        manager: str | None,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        content_type = content_type.split(";")[0].strip()
        if content_type == APPLY:
            return self.apply(resource, namespace, name, raw, manager, force, subresource, dry_run)
        if force:
            raise bad_request("force is only allowed for apply patches")
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from None
        old = self.store.get(resource, namespace, name)
        if content_type == MERGE:
            new = patch.merge_patch(old, body)
        elif content_type == STRATEGIC:
            new = patch.strategic_merge_patch(old, body)
        elif content_type == JSON_PATCH:
            new = patch.json_patch(old, body)
        else:
            raise unsupported_media_type(content_type)
        if not isinstance(new, dict):
            raise bad_request("the patch must produce an object")
        sent_rv = (new.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(resource, name, MODIFIED)
        obj = self._prepare_body(resource, namespace, new)
        return self._write(resource, old, obj, manager or "unknown", subresource, dry_run)

    def apply(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        raw: bytes,
        manager: str | None,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
    ) -> dict[str, Any]:
        if not manager:
            raise bad_request("fieldManager is required for apply requests")
        config = yamlbody.decode(raw) if raw else None
        if not isinstance(config, dict):
            raise bad_request("the body of an apply patch must be an object")
        config = self._prepare_body(resource, namespace, config)
        if config["metadata"].get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({config['metadata'].get('name')}) does "
                f"not match the name on the URL ({name})"
            )
        config["metadata"]["name"] = name
        if config["metadata"].get("managedFields"):
            raise bad_request("metadata.managedFields must be nil")
        old = self.store.find(resource, namespace, name)
        sent_rv = config["metadata"].pop("resourceVersion", None)
        if old is not None and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise conflict(resource, name, MODIFIED)
        if resource.has_status and subresource != "status":
            config.pop("status", None)
        now = now_rfc3339()
        kind_name = f"{resource.plural}/{name}"
        if old is None:
            self._check_namespace(resource, namespace)
            obj = fieldmanager.apply(
                None, config, manager, force, resource.api_version, now, kind_name
            )
            entries = obj["metadata"].pop("managedFields")
            created = self._prepare_body(resource, namespace, obj)
            for key in SYSTEM_META:
                created["metadata"].pop(key, None)
            created["metadata"]["uid"] = str(uuid.uuid4())
            if resource.has_status and resource.kind not in ("Namespace", "Node"):
                created.setdefault("status", {})
            apply_defaults(resource.kind, created)
            causes = validate(resource, created, None)
            if causes:
                raise invalid(resource, name, causes)
            self._admit(resource, created)
            created["metadata"]["managedFields"] = entries
            return created if dry_run else self.store.create(resource, created)
        obj = fieldmanager.apply(old, config, manager, force, resource.api_version, now, kind_name)
        return self._write(resource, old, obj, manager, subresource, dry_run, applied=True)

    # --- delete -----------------------------------------------------------------------------

    def delete(
        self, resource: Resource, namespace: str, name: str, grace_seconds: int | None = None
    ) -> dict[str, Any]:
        obj = self.store.get(resource, namespace, name)
        if resource.kind == "Pod" and grace_seconds != 0 and self.on_pod_delete:
            if obj["metadata"].get("deletionTimestamp"):
                return obj
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            grace = (
                grace_seconds
                if grace_seconds is not None
                else ((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            )
            obj["metadata"]["deletionGracePeriodSeconds"] = grace
            marked = self.store.replace(resource, obj)
            if self.on_pod_delete(marked):
                return marked
        deleted = self.store.delete(resource, namespace, name)
        self.collect_dependents(deleted)
        if resource.kind == "Namespace":
            self._empty_namespace(name)
        return deleted

    def collect_dependents(self, owner: dict[str, Any]) -> None:
        """Background cascading deletion: objects owned by `owner` go too."""
        uid = owner["metadata"]["uid"]
        for resource in resources.RESOURCES:
            if not resource.namespaced:
                continue
            for obj in self.store.list(
                resource,
                owner["metadata"].get("namespace", ""),
                lambda o: any(
                    r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or []
                ),
            ):
                with contextlib.suppress(ApiError):
                    self.delete(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def _empty_namespace(self, namespace: str) -> None:
        for resource in resources.RESOURCES:
            if resource.namespaced:
                for obj in self.store.list(resource, namespace):
                    with contextlib.suppress(ApiError):
                        self.delete(resource, namespace, obj["metadata"]["name"], 0)

    # --- events -----------------------------------------------------------------------------

    def record_event(
        self,
        involved: dict[str, Any],
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
        field_path: str = "",
    ) -> None:
        """A v1 Event about `involved`; repeats of the same reason and message count up."""
        meta = involved["metadata"]
        namespace = meta.get("namespace", "default")

        def same(event: dict[str, Any]) -> bool:
            return (
                event.get("involvedObject", {}).get("uid") == meta.get("uid")
                and event.get("reason") == reason
                and event.get("message") == message
            )

        for existing in self.store.list(EVENTS, namespace, same):
            existing["count"] = existing.get("count", 1) + 1
            existing["lastTimestamp"] = now_rfc3339()
            self.store.replace(EVENTS, existing)
            return
        now = now_rfc3339()
        involved_ref: dict[str, Any] = {
            "kind": involved.get("kind"),
            "namespace": namespace,
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved_ref["fieldPath"] = field_path
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta.get('name')}.{random.getrandbits(64):016x}",
                "namespace": namespace,
            },
            "involvedObject": involved_ref,
            "reason": reason,
            "message": message,
            "source": {
                "component": component,
                **({"host": "pdwatch-embedded"} if component == "kubelet" else {}),
            },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": type_,
            "reportingComponent": component,
            "reportingInstance": "pdwatch-embedded" if component == "kubelet" else "",
        }
        self.store.create(EVENTS, event)


def qos_class(pod: dict[str, Any]) -> str:
    """Guaranteed when every container's requests equal its limits, BestEffort with none."""
    containers = (pod.get("spec") or {}).get("containers") or []
    resources_ = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources_):
        return "BestEffort"
    if all(
        r.get("limits") and r.get("requests", r.get("limits")) == r.get("limits")
        for r in resources_
    ):
        return "Guaranteed"
    return "Burstable"


def _spec_of(obj: dict[str, Any]) -> Any:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A write that changes nothing but managedFields timestamps is a no-op."""

    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        for entry in out.get("metadata", {}).get("managedFields") or []:
            entry.pop("time", None)
        out.get("metadata", {}).pop("resourceVersion", None)
        return out

    return strip(old) == strip(new)
