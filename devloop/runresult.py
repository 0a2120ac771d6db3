"""What a run of the workflow (`t`, POST /run) did, in a few lines above the engine's JSON:
how many nodes ran and how long it took, each failed node's error, and, for an error
that is a failed outside call, what that means here (a pod's network is the cluster's:
on the embedded cluster, this machine's; a Deno permission is the engine's flags).

The engine keeps only a failed node's message (its `errors` map), not the stack: a node
that throws at run time is shown with the message it threw.
"""

from __future__ import annotations

import re
from typing import Any

# Deno's fetch errors (deno_fetch: "error sending request for url (URL): client error
# (Connect): …") and its permission refusal ("Requires net access to "host:port"").
_URL = re.compile(r"error sending request for url \((?P<url>[^)\s]+)\)")
_NETWORK = (
    (
        re.compile(r"dns error|failed to lookup address|Name or service not known", re.I),
        "its host name does not resolve from the pod: the pod has no route to the outside "
        "(on the embedded cluster, a pod's network is this machine's)",
    ),
    (
        re.compile(r"Connection refused|tcp connect error|Network is unreachable", re.I),
        "nothing answered: the host is down or unreachable from the pod's network",
    ),
    (
        re.compile(r"timed out|deadline|Timeout", re.I),
        "no answer in time from the outside host",
    ),
    (
        re.compile(r"certificate|tls|handshake", re.I),
        "the TLS handshake failed (a proxy, or the host's certificate)",
    ),
)
# Deno 2's TypeError for any failed fetch; its cause (the reason) is not in the message
# the engine keeps
_FETCH_FAILED = re.compile(r"^fetch failed\b", re.I)
_PERMISSION = re.compile(r'Requires net access to "(?P<host>[^"]+)"')
_IMPORT_PERMISSION = re.compile(r'Requires import access to "(?P<host>[^"]+)"')
# The Tentacular format's import map sends jsr:/npm: modules to the cluster's module proxy.
_PROXY = re.compile(r"Import 'http://esm-sh\.(?P<namespace>[a-z0-9-]+)\.svc[^']*' failed")


def outside_call_hint(message: str) -> str | None:
    """What a node's error means when it is a failed outside call; None otherwise."""
    proxied = _PROXY.search(message)
    if proxied:
        return (
            "a jsr:/npm: module is loaded through the cluster's module proxy (esm-sh in "
            f"namespace {proxied['namespace']}, as the import map says), and none answers "
            "here: `tntc cluster install` sets it up on a cluster; the embedded cluster and "
            "pdwatch's node have none"
        )
    refused = _IMPORT_PERMISSION.search(message)
    if refused:
        return (
            f"the engine's Deno permissions do not allow imports from {refused['host']}: "
            "modules load through the module proxy (declare the module in the contract)"
        )
    denied = _PERMISSION.search(message)
    if denied:
        return (
            f"the engine's Deno permissions do not allow {denied['host']}: the workflow's "
            "contract (its dependencies) decides the --allow-net list"
        )
    if _FETCH_FAILED.search(message):
        return (
            "an outside call (fetch) failed; the engine keeps no cause: the host may not "
            "resolve or answer from the pod's network (on the embedded cluster, a pod's "
            "network is this machine's)"
        )
    called = _URL.search(message)
    if called is None:
        return None
    url = called["url"]
    for pattern, meaning in _NETWORK:
        if pattern.search(message):
            return f"the call to {url} failed: {meaning}"
    return f"the call to {url} failed"


def _mapping(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def summarize(status: int, body: Any) -> tuple[str, ...]:
    """A few lines on the engine's answer ({success, outputs, errors, timing}); none for
    an answer of another shape (an error of the API server's proxy, a text)."""
    if not isinstance(body, dict) or not isinstance(body.get("success"), bool):
        return ()
    outputs, errors, timing = (_mapping(body, key) for key in ("outputs", "errors", "timing"))
    took = timing.get("durationMs")
    after = f" in {took} ms" if isinstance(took, int | float) else ""
    ran = len(outputs) + len(errors)
    if body["success"]:
        lines = [f"ran {ran} node{'s' if ran != 1 else ''}{after}: all succeeded"]
    else:
        failed = len(errors)
        lines = [
            f"ran {ran} node{'s' if ran != 1 else ''}{after}: {failed} failed "
            f"(HTTP {status}; a stage with a failed node is the last to run)"
        ]
    for node, message in errors.items():
        text = str(message)
        lines.append(f"{node}: {text}")
        hint = outside_call_hint(text)
        if hint:
            lines.append(f"  → {hint}")
    return tuple(lines)
