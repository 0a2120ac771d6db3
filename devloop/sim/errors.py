"""API errors as the API server returns them: a `Status` body with the real reason and code.

The messages follow k8s.io/apimachinery/pkg/api/errors (NewNotFound, NewAlreadyExists,
NewConflict, NewInvalid, NewBadRequest, NewForbidden) so clients that parse them, and
people who read them, see what a real cluster says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devloop.sim.resources import Resource


@dataclass(frozen=True)
class Cause:
    """A field error (k8s field.Error): the 422 body lists them as causes."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    @staticmethod
    def invalid(path: str, value: Any, detail: str) -> Cause:
        return Cause(path, f"Invalid value: {_go_quote(value)}: {detail}")

    @staticmethod
    def required(path: str, detail: str = "") -> Cause:
        text = "Required value" + (f": {detail}" if detail else "")
        return Cause(path, text, "FieldValueRequired")

    @staticmethod
    def too_long(path: str, limit: int) -> Cause:
        return Cause(path, f"Too long: may not be more than {limit} bytes", "FieldValueTooLong")

    @staticmethod
    def forbidden(path: str, detail: str) -> Cause:
        return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")

    @staticmethod
    def not_supported(path: str, value: Any, supported: list[str]) -> Cause:
        options = ", ".join(json.dumps(s) for s in supported)
        return Cause(
            path,
            f"Unsupported value: {_go_quote(value)}: supported values: {options}",
            "FieldValueNotSupported",
        )

    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(resource: Resource, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kind": resource.plural}
    if resource.group:
        out["group"] = resource.group
    return out


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{resource.group_resource} "{name}" not found', _details(resource, name)
    )


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{resource.group_resource} "{name}" already exists',
        _details(resource, name),
    )


def conflict(resource: Resource, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.group_resource} "{name}": {why}',
        _details(resource, name),
    )


MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(resource: Resource, name: str, causes: list[Cause]) -> ApiError:
    texts = [c.text() for c in causes]
    listed = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {
        "name": name,
        "kind": resource.kind,
        "causes": [{"reason": c.reason, "message": c.message, "field": c.field} for c in causes],
    }
    if resource.group:
        details["group"] = resource.group
    return ApiError(422, "Invalid", f'{resource.kind} "{name}" is invalid: {listed}', details)


def too_large() -> ApiError:
    """etcd's answer to a value over its --max-request-bytes, passed through as a 500."""
    return ApiError(500, "", "etcdserver: request is too large")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(resource: Resource, name: str, why: str) -> ApiError:
    return ApiError(
        403,
        "Forbidden",
        f'{resource.group_resource} "{name}" is forbidden: {why}',
        _details(resource, name),
    )


def method_not_supported(resource: Resource, verb: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{verb} is not supported on resources of kind {resource.group_resource!r}",
        {"kind": resource.plural, "group": resource.group},
    )


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types "
        f"include: application/json-patch+json, application/merge-patch+json, "
        f"application/apply-patch+yaml, application/strategic-merge-patch+json "
        f"(got {content_type!r})",
    )


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def _go_quote(value: Any) -> str:
    """Values in field errors are printed as Go's %q / %v would."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
