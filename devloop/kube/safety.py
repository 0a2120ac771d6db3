"""Which clusters pdwatch deploys to without asking: those that are evidently local.

As Tilt does with `allow_k8s_contexts`: a development loop that applies on every save
must not reach a shared or production cluster by accident. The decision is taken from the
kubeconfig alone, before anything leaves the machine (an exec credential plugin is not
even run for a refused context).

- A context named like a local cluster (kind-*, k3d-*, k0s, minikube, docker-desktop,
  rancher-desktop, orbstack, colima, the embedded cluster) counts as local only when its
  server is: loopback, a private or link-local address (kind on a docker network,
  minikube on 192.168.49.2, k0s in a local VM), or a name that resolves only to such
  addresses (docker-desktop's kubernetes.docker.internal).
- Any context whose server is loopback counts as local; a `*.localhost` name counts only
  when it resolves to loopback.
- A `proxy-url` sends the traffic elsewhere: such a context is never local by itself.
Anything else needs `--allow-context NAME`.

A server address that two parsers could read differently is refused whatever the flags
(kubectl refuses it too): `http://evil:80\\@127.0.0.1:6443` is loopback to urllib's
parser and `evil:80` to the HTTP client that sends the credentials. Only http(s) URLs with
a host, an optional numeric port and no user information, backslash, whitespace, control
character or percent-escape in the authority are read at all.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
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
Resolver = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """The addresses a host name resolves to; [] when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def addresses(
    server: str, resolver: Resolver
) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    host = urlparse(server).hostname or ""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found = []
    for text in resolver(host) if host else []:
        try:
            found.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            continue
    return found


def is_loopback_server(server: str, resolver: Resolver = resolve) -> bool:
    found = addresses(server, resolver)
    return bool(found) and all(a.is_loopback for a in found)


# Loopback, the RFC 1918 private ranges, link-local, and IPv6 unique-local: where local
# clusters live (not Python's is_private, which also counts documentation ranges).
LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)


def is_local_network_server(server: str, resolver: Resolver = resolve) -> bool:
    found = addresses(server, resolver)
    return bool(found) and all(
        any(a.version == n.version and a in n for n in LOCAL_NETWORKS) for a in found
    )


def looks_local(context: str) -> bool:
    return context in LOCAL_CONTEXT_NAMES or context.startswith(LOCAL_CONTEXT_PREFIXES)


def ambiguity(server: str) -> str | None:
    """Why `server` cannot be read one way only, or None when it can."""
    if any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in server):
        return "it holds a backslash, a space or a control character"
    scheme, sep, rest = server.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "it is not an http:// or https:// URL"
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        return "it names a user (user@host): the host it connects to is ambiguous"
    if "%" in authority:
        return "its host is percent-escaped"
    parsed = urlparse(server)
    try:
        port = parsed.port
    except ValueError:
        return "its port is not a number"
    if not parsed.hostname or (port is not None and not 0 < port < 65536):
        return "it has no host, or a port out of range"
    return None


def refusal(
    context: str,
    server: str,
    allowed: set[str],
    proxy_url: str = "",
    resolver: Resolver = resolve,
) -> str | None:
    """None when deploying to this context is fine; else the reason and how to allow it."""
    unclear = ambiguity(server)
    if unclear is not None:
        return (
            f"context {context!r}: its server address {server!r} cannot be trusted: {unclear}. "
            "pdwatch refuses it whatever the flags, before any credential is used; write the "
            "address as https://HOST:PORT"
        )
    if context in allowed:
        return None
    why = ""
    if proxy_url:
        why = f"its traffic goes through the proxy {proxy_url}"
    elif looks_local(context):
        if is_local_network_server(server, resolver):
            return None
        why = "its name looks local but its server is not a loopback or private address"
    elif is_loopback_server(server, resolver):
        return None
    else:
        why = "it does not look like a local development cluster"
    return (
        f"context {context!r} (server {server}): {why} (local means kind-*, k3d-*, k0s, "
        f"minikube, docker-desktop, rancher-desktop on a loopback or private address, or any "
        f"API server on a loopback address); pdwatch applies on every save, so it refuses. "
        f"If this cluster is yours to break, run again with --allow-context {context}"
    )
