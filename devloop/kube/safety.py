"""Which clusters pdwatch deploys to without asking: those that are evidently local.

As Tilt does with `allow_k8s_contexts`: a development loop that applies on every save
must not reach a shared or production cluster by accident.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

LOCAL_CONTEXT_PREFIXES = ("kind-", "k3d-", "k0s-")
LOCAL_CONTEXT_NAMES = {
    "minikube",
    "docker-desktop",
    "docker-for-desktop",
    "rancher-desktop",
    "k0s",
    "pdwatch-embedded",
    "orbstack",
    "colima",
}


def is_loopback_server(server: str) -> bool:
    host = urlparse(server).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(context: str, server: str, allowed: set[str]) -> str | None:
    """None when deploying to this context is fine; else the reason and how to allow it."""
    if context in allowed or context in LOCAL_CONTEXT_NAMES:
        return None
    if context.startswith(LOCAL_CONTEXT_PREFIXES) or is_loopback_server(server):
        return None
    return (
        f"context {context!r} (server {server}) does not look like a local development "
        f"cluster (kind-*, k3d-*, k0s, minikube, docker-desktop, rancher-desktop, or an "
        f"API server on a loopback address); pdwatch applies on every save, so it refuses. "
        f"If this cluster is yours to break, run again with --allow-context {context}"
    )
