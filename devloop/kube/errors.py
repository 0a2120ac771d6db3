"""Why a cluster call failed, as a few typed exceptions mapped from HTTP in one place.

The API server explains itself in a `Status` body (reason, message, causes); callers
show that text, not a traceback. A body that is not a Status is truncated so that
nothing large or sensitive floods the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devloop.kube.retry import retry_after

MAX_BODY = 300
MAX_MESSAGE = 400  # a cluster's message, cut to something a terminal line can hold
MAX_CAUSES = 5
MAX_VALUE = 60  # an `Invalid value: "…"` longer than this is not repeated
# (not a `User "…"`: who was refused is what an RBAC refusal is about, and a
# ServiceAccount's full name is often longer than that)
_QUOTED = re.compile(r'(?<!User )"((?:[^"\\]|\\.){' + str(MAX_VALUE + 1) + r',})"')


@dataclass
class KubeError(Exception):
    message: str
    status: int = 0
    reason: str = ""
    causes: list[dict[str, str]] = field(default_factory=list)
    retry_after: float | None = None  # what the server asked to wait (Retry-After), s
    # what the Status is about: (resource, name) from its details, e.g. ("namespaces",
    # "team") for an object created in a namespace that does not exist
    subject: tuple[str, str] = ("", "")

    def __str__(self) -> str:
        return self.message

    @property
    def retryable(self) -> bool:
        return False

    def details(self) -> list[str]:
        """The server's causes (422 field errors, 409 apply conflicts) as "field: message",
        shortened like the message."""
        shown = [
            f"{c.get('field') or '(object)'}: {shorten(c.get('message', ''))}"
            for c in self.causes[:MAX_CAUSES]
        ]
        if len(self.causes) > MAX_CAUSES:
            shown.append(f"… and {len(self.causes) - MAX_CAUSES} more")
        return shown

    def scrubbed(self, values: list[str]) -> KubeError:
        """This error with every one of `values` (a ConfigMap's files, a Secret's values)
        taken out of its message and causes: an error must never print them."""
        self.message = scrub(self.message, values)
        self.causes = [{**c, "message": scrub(c.get("message", ""), values)} for c in self.causes]
        return self


def shorten(text: str) -> str:
    """Long quoted values out, then at most MAX_MESSAGE characters."""
    text = _QUOTED.sub(lambda m: f'"…" ({len(m.group(1))} characters)', text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


def scrub(text: str, values: list[str]) -> str:
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        for form in {value, json.dumps(value)[1:-1]}:
            text = text.replace(form, "<redacted>")
    return shorten(text)


class Unreachable(KubeError):
    """No answer: connection refused, DNS, TLS, a read timeout."""

    @property
    def retryable(self) -> bool:
        return True


class ServerError(KubeError):
    """5xx or 429: the server is there but could not do it now."""

    @property
    def retryable(self) -> bool:
        return True


class Forbidden(KubeError):
    pass


class Terminating(Forbidden):
    """403 because the namespace is being deleted: it goes (or comes back) shortly."""

    @property
    def retryable(self) -> bool:
        return True


class NotFound(KubeError):
    pass


class NotOurs(KubeError):
    """An object pdwatch would write exists and was made by someone else: pdwatch does not
    take it over (not retried: it stays someone else's until a person decides)."""


class Vanished(KubeError):
    """What a cycle was following was deleted under it (a namespace being deleted takes
    its Deployment with it): deploying again is the way back."""

    @property
    def retryable(self) -> bool:
        return True


class Conflict(KubeError):
    pass


class Invalid(KubeError):
    """422 (or 400): the object was refused; `causes` name the fields."""


class Timeout(KubeError):
    """A deadline of ours expired (e.g. the 30 s rollout restart)."""

    @property
    def retryable(self) -> bool:
        return True


def from_status(
    status: int,
    body: Any,
    doing: str = "",
    http_reason: str = "",
    headers: Mapping[str, Any] | None = None,
) -> KubeError:
    """The error an HTTP answer that is not a success means (the one place that knows
    HTTP): its class from the status, its words from the Status body."""
    error = _from_status(status, body, f"{doing}: " if doing else "", http_reason)
    error.retry_after = retry_after(headers)
    return error


def _from_status(status: int, body: Any, prefix: str, http_reason: str) -> KubeError:
    parsed: dict[str, Any] = {}
    if isinstance(body, (str, bytes)) and body:
        try:
            loaded = json.loads(body)
            if isinstance(loaded, dict) and loaded.get("kind") == "Status":
                parsed = loaded
        except ValueError:
            pass
    message = shorten(parsed.get("message") or _truncate(body) or http_reason or f"HTTP {status}")
    reason = parsed.get("reason", "")
    details = parsed.get("details") or {}
    causes = details.get("causes") or []
    text = f"{prefix}{message}"
    kind: type[KubeError]
    if status in (400, 422):
        kind = Invalid
    elif status == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes):
        # the namespace lifecycle admission's typed cause (StatusCause.Type is "reason" in
        # JSON), not its words
        kind = Terminating
    elif status == 403 or status == 401:
        kind = Forbidden
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = Conflict
    elif status >= 500 and "request is too large" in message:
        kind = Invalid  # etcd refused the object's size: the same request fails again
    elif status == 429 or status >= 500 or status == 0:
        kind = ServerError
    else:
        kind = KubeError
    subject = (str(details.get("kind") or ""), str(details.get("name") or ""))
    return kind(text, status, reason, causes, subject=subject)


def _truncate(body: Any) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    text = str(body or "").strip()
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + "…"
