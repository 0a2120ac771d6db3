"""The API server's write and read semantics on top of the store.

Validation (422), admission (RuntimeClass, forbidden verbs: 403), optimistic concurrency
(409 on a stale resourceVersion), status subresources, `metadata.generation`,
managedFields for every write, server-side apply, no-op writes that change nothing
(same resourceVersion, no watch event), graceful pod deletion, and garbage collection of
dependents through ownerReferences. Controllers write through here too, like real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from devloop.sim import admission, fieldmanager, patch, resources, yamlbody
from devloop.sim.clone import clone
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
from devloop.sim.store import Store, WatchEvent, now_rfc3339
from devloop.sim.validation import validate

NAMESPACES = resources.of_kind("v1", "Namespace")
PODS = resources.of_kind("v1", "Pod")
RUNTIME_CLASSES = resources.of_kind("node.k8s.io/v1", "RuntimeClass")
SERVICE_ACCOUNTS = resources.of_kind("v1", "ServiceAccount")
QUOTAS = resources.of_kind("v1", "ResourceQuota")
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
        # (namespace, involved uid, reason, message) → the Event that counts its repeats
        self.recorded: dict[tuple[str, Any, str, str], str] = {}
        self.terminating: set[str] = set()  # namespaces being emptied
        # (owner uid, namespace) → the owner a foreground deletion waits on
        self.foreground_owners: dict[tuple[str, str], tuple[Resource, dict[str, Any]]] = {}
        store.listeners.append(self.on_store_event)

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
            existing = self.store.find(NAMESPACES, "", meta.get("name", ""))
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'object is being deleted: namespaces "{meta.get("name")}" already exists',
                    {"name": meta.get("name"), "kind": "namespaces"},
                )
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        self._check_namespace(resource, namespace, meta.get("name", ""))
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
        obj = clone(body)
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

    def _check_namespace(self, resource: Resource, namespace: str, name: str = "") -> None:
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
                refused = forbidden(
                    resource,
                    name,
                    f"unable to create new content in namespace "
                    f"{namespace} because it is being terminated",
                )
                # namespace/lifecycle admission.go: a typed cause beside the words
                refused.details["causes"] = [
                    {
                        "reason": "NamespaceTerminating",  # StatusCause.Type's JSON name
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ]
                raise refused

    def _admit(self, resource: Resource, obj: dict[str, Any]) -> None:
        """Admission the real API server runs for a new pod, in its plugin order
        (pkg/kubeapiserver/options/plugins.go AllOrderedPlugins; mutating before
        validating): ServiceAccount defaulting, RuntimeClass, then the ServiceAccount's
        existence, PodSecurity, ResourceQuota (see admission.py for each one's source)."""
        if resource.kind != "Pod":
            return
        meta, spec = obj["metadata"], obj.setdefault("spec", {})
        name = meta.get("name") or meta.get("generateName", "")
        namespace = meta.get("namespace", "")
        account = admission.service_account_name(obj)
        spec["serviceAccountName"] = spec["serviceAccount"] = account
        runtime_class = spec.get("runtimeClassName")
        if runtime_class and self.store.find(RUNTIME_CLASSES, "", runtime_class) is None:
            raise forbidden(
                resource, name, f'pod rejected: RuntimeClass "{runtime_class}" not found'
            )
        service_account = self.store.find(SERVICE_ACCOUNTS, namespace, account)
        if service_account is None:
            raise forbidden(resource, name, admission.missing_service_account(namespace, account))
        if not spec.get("imagePullSecrets") and service_account.get("imagePullSecrets"):
            # serviceaccount admission.go: a pod without its own takes the account's
            spec["imagePullSecrets"] = clone(service_account["imagePullSecrets"])
        ns = self.store.find(NAMESPACES, "", namespace) or {}
        refused = admission.pod_security(ns, obj)
        if refused is None:
            quotas = self.store.view(QUOTAS, namespace)
            if quotas:
                pods = self.store.view(PODS, namespace)
                refused = admission.resource_quota(quotas, pods, obj)
        if refused is not None:
            raise forbidden(resource, name, refused)

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
                meta[key] = clone(old["metadata"][key])
            else:
                meta.pop(key, None)
        meta["name"] = old["metadata"]["name"]
        if subresource == "status":
            new_status = obj.get("status")
            obj = clone(old)
            if new_status is not None:
                obj["status"] = new_status
        elif resource.has_status:
            if "status" in old:
                obj["status"] = clone(old["status"])
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
        config = fieldmanager.default_list_keys(self._prepare_body(resource, namespace, config))
        if not config["metadata"].get("name"):
            # handlers/rest.go: an apply configuration must name its object
            raise bad_request(
                f"the name of the object ({name} based on URL) was undeterminable: "
                "name must be provided"
            )
        if config["metadata"].get("name") != name:
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
            self._check_namespace(resource, namespace, name)
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
        self,
        resource: Resource,
        namespace: str,
        name: str,
        grace_seconds: int | None = None,
        propagation: str = "Background",
    ) -> dict[str, Any]:
        """Deletion as the API server and garbage collector do it (staging/src/k8s.io/
        apiserver/pkg/registry/generic/registry/store.go Delete, pkg/controller/
        garbagecollector): an object with finalizers is only marked (deletionTimestamp) and
        goes when the last finalizer is removed; a pod is marked and the kubelet ends it;
        dependents are deleted after the owner (Background), before it (Foreground: the
        owner waits with the foregroundDeletion finalizer), or kept without the owner
        reference (Orphan); a namespace is Terminating until its content is gone."""
        obj = self.store.get(resource, namespace, name)
        meta = obj["metadata"]
        if resource.kind == "Namespace":
            return self._terminate_namespace(obj)
        if resource.kind == "Pod" and grace_seconds != 0 and self.on_pod_delete:
            if meta.get("deletionTimestamp"):
                return obj
            meta["deletionTimestamp"] = now_rfc3339()
            grace = (
                grace_seconds
                if grace_seconds is not None
                else ((obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            )
            meta["deletionGracePeriodSeconds"] = grace
            marked = self.store.replace(resource, obj)
            if self.on_pod_delete(marked):
                return marked
            obj, meta = marked, marked["metadata"]
        if propagation == "Orphan":
            self.orphan_dependents(obj)
        elif propagation == "Foreground" and self.dependents(obj):
            meta.setdefault("finalizers", [])
            if "foregroundDeletion" not in meta["finalizers"]:
                meta["finalizers"].append("foregroundDeletion")
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = now_rfc3339()
                meta["deletionGracePeriodSeconds"] = 0
                obj = self.store.replace(resource, obj)
            if "foregroundDeletion" in meta["finalizers"]:
                owner_key = (meta["uid"], meta.get("namespace", ""))
                self.foreground_owners[owner_key] = (resource, obj)
                self.collect_dependents(obj)
                self.finish_foreground(resource, obj)
            return obj
        deleted = self.store.delete(resource, namespace, name)
        self.collect_dependents(deleted)
        return deleted

    def dependents(self, owner: dict[str, Any]) -> list[tuple[Resource, dict[str, Any]]]:
        """The owner's dependents in its namespace, by kind (in RESOURCES order), then key."""
        namespace = owner["metadata"].get("namespace", "")
        order = {r: i for i, r in enumerate(resources.RESOURCES)}
        found = [
            (order[resource], key, resource, obj)
            for resource, key, obj in self.store.owned_by(owner["metadata"]["uid"])
            if resource.namespaced and key[2] == namespace
        ]
        found.sort(key=lambda item: (item[0], item[1]))
        return [(resource, obj) for _, _, resource, obj in found]

    def collect_dependents(self, owner: dict[str, Any]) -> None:
        """Cascading deletion: objects owned by `owner` go too."""
        for resource, obj in self.dependents(owner):
            with contextlib.suppress(ApiError):
                self.delete(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])

    def orphan_dependents(self, owner: dict[str, Any]) -> None:
        """--cascade=orphan: the dependents stay, without the owner reference."""
        uid = owner["metadata"]["uid"]
        for resource, obj in self.dependents(owner):
            kept = clone(obj)
            kept["metadata"]["ownerReferences"] = [
                r for r in kept["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
            ]
            if not kept["metadata"]["ownerReferences"]:
                kept["metadata"].pop("ownerReferences")
            with contextlib.suppress(ApiError):
                self.store.replace(resource, kept)

    def finish_foreground(self, resource: Resource, owner: dict[str, Any]) -> None:
        """The garbage collector removes foregroundDeletion once no dependent is left."""
        if self.dependents(owner):
            return
        meta = owner["metadata"]
        self.foreground_owners.pop((meta["uid"], meta.get("namespace", "")), None)
        current = self.store.find(resource, meta.get("namespace", ""), meta["name"])
        if current is None:
            return
        current["metadata"]["finalizers"] = [
            f for f in current["metadata"].get("finalizers") or [] if f != "foregroundDeletion"
        ]
        self.store.replace(resource, current)
        self.finalize(resource, current)

    def finalize(self, resource: Resource, obj: dict[str, Any]) -> None:
        """An object marked for deletion goes once its last finalizer is gone."""
        meta = obj["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            with contextlib.suppress(ApiError):
                deleted = self.store.delete(resource, meta.get("namespace", ""), meta["name"])
                self.collect_dependents(deleted)

    def _terminate_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """pkg/controller/namespace: Terminating, its content deleted, then it goes; while
        it terminates, creating content in it is refused (403) and creating it again is
        409 AlreadyExists."""
        name = namespace["metadata"]["name"]
        if not namespace["metadata"].get("deletionTimestamp"):
            namespace["metadata"]["deletionTimestamp"] = now_rfc3339()
            namespace["metadata"]["deletionGracePeriodSeconds"] = 0
            namespace.setdefault("status", {})["phase"] = "Terminating"
            namespace = self.store.replace(NAMESPACES, namespace)
            self.terminating.add(name)
            self._empty_namespace(name)
        self.maybe_remove_namespace(name)
        return namespace

    def maybe_remove_namespace(self, name: str) -> None:
        if name not in self.terminating:
            return
        for resource in resources.RESOURCES:
            if resource.namespaced and self.store.scan(resource, name):
                return
        self.terminating.discard(name)
        with contextlib.suppress(ApiError):
            self.store.delete(NAMESPACES, "", name)

    def on_store_event(self, event: WatchEvent) -> None:
        """What the garbage collector and the namespace controller react to."""
        meta = event.object.get("metadata") or {}
        if event.type == "DELETED":
            namespace = meta.get("namespace", "")
            if namespace in self.terminating:
                asyncio.get_running_loop().call_soon(self.maybe_remove_namespace, namespace)
            for ref in meta.get("ownerReferences") or []:
                owner_key = (ref.get("uid"), namespace)
                if owner_key in self.foreground_owners:
                    resource, owner = self.foreground_owners[owner_key]
                    asyncio.get_running_loop().call_soon(self.finish_foreground, resource, owner)
        elif (
            event.type == "MODIFIED"
            and meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and event.resource.kind not in ("Pod", "Namespace")
        ):
            asyncio.get_running_loop().call_soon(self.finalize, event.resource, event.object)

    def _empty_namespace(self, namespace: str) -> None:
        for resource in resources.RESOURCES:
            if resource.namespaced:
                for obj in self.store.list(resource, namespace):
                    with contextlib.suppress(ApiError):
                        self.delete(resource, namespace, obj["metadata"]["name"])

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
        if namespace in self.terminating:
            return  # the recorder's create would be refused (403) in a terminating namespace

        # client-go's EventCorrelator aggregates repeats in the recording process, not
        # through the API: here too, from memory (a namespace of 20,000 Events is not
        # listed for every event).
        seen = (namespace, meta.get("uid"), reason, message)
        earlier = self.recorded.get(seen)
        existing = self.store.find(EVENTS, namespace, earlier) if earlier else None
        if existing is not None:
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
        event_name = f"{meta.get('name')}.{random.getrandbits(64):016x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name,
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
        if len(self.recorded) >= RECORDED_MAX:
            self.recorded.clear()
        self.recorded[seen] = event_name


RECORDED_MAX = 4096  # the events whose repeats are counted up (EventCorrelator's cache)


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
        out = clone(obj)
        for entry in out.get("metadata", {}).get("managedFields") or []:
            entry.pop("time", None)
        out.get("metadata", {}).pop("resourceVersion", None)
        return out

    return strip(old) == strip(new)
