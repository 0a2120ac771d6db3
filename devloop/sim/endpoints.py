"""A Service's endpoints, as the endpoint-slice controller writes them: the pods its
selector picks that have an address, ready when they are Ready and not being deleted, with
each Service port's targetPort resolved against the pods (a number, or a container port's
name). The service proxy and the node's curl both read them from the EndpointSlice."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from devloop.sim import resources
from devloop.sim.api import Api
from devloop.sim.clone import clone
from devloop.sim.errors import ApiError
from devloop.sim.store import Store, WatchEvent

PODS = resources.of_kind("v1", "Pod")
SERVICES = resources.of_kind("v1", "Service")
SLICES = resources.of_kind("discovery.k8s.io/v1", "EndpointSlice")
MANAGER = "endpointslice-controller"


def service_port(service: dict[str, Any], wanted: str = "") -> dict[str, Any] | None:
    """The Service's port named or numbered `wanted`, else its first."""
    ports = (service.get("spec") or {}).get("ports") or []
    for port in ports:
        if wanted and wanted in (str(port.get("port")), port.get("name")):
            return dict(port)
    return dict(ports[0]) if ports and not wanted else None


def target_port(port: dict[str, Any], pod: dict[str, Any]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == target:
                return int(declared["containerPort"])
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return (
        not pod["metadata"].get("deletionTimestamp")
        and bool(status.get("podIP"))
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    )


def ready_addresses(found: dict[str, Any] | None, port_name: str) -> list[tuple[str, int]]:
    """(address, port) of each ready endpoint of an EndpointSlice, for the Service port
    named `port_name` ("" for an unnamed one)."""
    if found is None:
        return []
    numbers = [p["port"] for p in found.get("ports") or [] if p.get("name", "") == port_name]
    return [
        (str(endpoint["addresses"][0]), int(number))
        for endpoint in found.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") and endpoint.get("addresses")
        for number in numbers
    ]


class EndpointSlices:
    """The endpoint-slice controller: one slice per Service with a selector, named after
    it, rewritten when its pods or the Service change (only when its content does)."""

    def __init__(self, api: Api, store: Store) -> None:
        self.api, self.store = api, store
        self._due: set[str] = set()  # namespaces to look at again
        store.listeners.append(self.on_event)

    def on_event(self, event: WatchEvent) -> None:
        if event.resource not in (PODS, SERVICES):
            return
        namespace = event.object["metadata"].get("namespace", "")
        if not self._due:
            asyncio.get_running_loop().call_soon(self._sync)
        self._due.add(namespace)

    def _sync(self) -> None:
        due, self._due = self._due, set()
        for namespace in due:
            with contextlib.suppress(ApiError):  # a namespace going away
                self._sync_namespace(namespace)

    def _sync_namespace(self, namespace: str) -> None:
        pods = self.store.view(PODS, namespace)
        for service in self.store.view(SERVICES, namespace):
            if not (service.get("spec") or {}).get("selector"):
                continue
            name = service["metadata"]["name"]
            wanted = slice_for(service, pods)
            existing = self.store.find(SLICES, namespace, name)
            if existing is None:
                self.api.create(SLICES, namespace, wanted, MANAGER)
            elif (existing.get("endpoints"), existing.get("ports")) != (
                wanted["endpoints"],
                wanted["ports"],
            ):
                updated = clone(existing)
                updated["endpoints"], updated["ports"] = wanted["endpoints"], wanted["ports"]
                self.api.update(SLICES, namespace, name, updated, MANAGER)


def slice_for(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    meta = service["metadata"]
    selector = (service.get("spec") or {}).get("selector") or {}
    ports = (service.get("spec") or {}).get("ports") or []
    chosen = [
        pod
        for pod in pods
        if all((pod["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        and (pod.get("status") or {}).get("podIP")
    ]
    targets = [(p, target_port(p, chosen[0]) if chosen else None) for p in ports]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {
                "kubernetes.io/service-name": meta["name"],
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [pod["status"]["podIP"]],
                "conditions": {
                    "ready": is_ready(pod),
                    "serving": is_ready(pod) or bool(pod["metadata"].get("deletionTimestamp")),
                    "terminating": bool(pod["metadata"].get("deletionTimestamp")),
                },
                "targetRef": {
                    "kind": "Pod",
                    "namespace": pod["metadata"]["namespace"],
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }
            for pod in sorted(chosen, key=lambda p: str(p["metadata"]["name"]))
        ],
        "ports": [
            {"name": port.get("name", ""), "port": number, "protocol": "TCP"}
            for port, number in targets
            if number is not None
        ],
    }
