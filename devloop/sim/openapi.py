"""A minimal OpenAPI v3 for the served resources: enough for kubectl to see that the server
validates fields itself (it then sends `fieldValidation=Strict` instead of downloading
schemas). kubectl's QueryParamVerifierV3 looks for a PATCH operation tagged with the
resource's `x-kubernetes-group-version-kind` that lists the `fieldValidation` query
parameter; that is what each group-version document holds."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devloop.sim import resources

PATCH_PARAMS = ["dryRun", "fieldManager", "fieldValidation", "force"]


def group_versions() -> dict[str, tuple[str, str]]:
    """`api/v1` → ("", "v1"), `apis/apps/v1` → ("apps", "v1")."""
    out: dict[str, tuple[str, str]] = {}
    for r in resources.RESOURCES:
        key = f"apis/{r.group}/{r.version}" if r.group else f"api/{r.version}"
        out[key] = (r.group, r.version)
    return out


def document(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in resources.RESOURCES:
        if (r.group, r.version) != (group, version) or "patch" not in r.verbs:
            continue
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        scope = "/namespaces/{namespace}" if r.namespaced else ""
        paths[f"{prefix}{scope}/{r.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {
                    "group": group,
                    "version": version,
                    "kind": r.kind,
                },
                "parameters": [
                    {"name": p, "in": "query", "schema": {"type": "string"}} for p in PATCH_PARAMS
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {},
    }


def index() -> dict[str, Any]:
    out = {}
    for key, (group, version) in group_versions().items():
        digest = hashlib.sha256(json.dumps(document(group, version)).encode()).hexdigest()
        out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest[:32].upper()}"}
    return {"paths": out}
