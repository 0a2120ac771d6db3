"""The non-apply patch types: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
strategic merge patch (lists with a merge key are merged item by item, as kubectl expects
for `kubectl patch` and `kubectl rollout restart`)."""

from __future__ import annotations

from typing import Any

from devloop.sim.clone import clone
from devloop.sim.errors import ApiError

# Strategic-merge keys by field name (k8s.io/api patchMergeKey tags).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
}


def merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":  # container ports merge on containerPort, Service ports on port
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def invalid_patch(detail: str) -> ApiError:
    return ApiError(
        422, "Invalid", f"the server rejected our request due to an error in our request: {detail}"
    )


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            out[name] = [v for v in out.get(name) or [] if v not in value]
            continue
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            mk = merge_key(key, value + out[key])
            out[key] = _merge_list(out[key], value, mk) if mk else clone(value)
        else:
            out[key] = strategic_merge_patch(out.get(key), value)
    return out


def _merge_list(current: list[Any], patch: list[Any], key: str) -> list[Any]:
    out = [clone(i) for i in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise invalid_patch(f"map: {item} does not contain declared merge key: {key}")
        index = next(
            (n for n, i in enumerate(out) if isinstance(i, dict) and i.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                out.pop(index)
        elif index is None:
            out.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            out[index] = strategic_merge_patch(out[index], item)
    return out


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise invalid_patch("a JSON patch must be a list of operations")
    doc = clone(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise invalid_patch(f"invalid JSON patch operation: {op}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _put(doc, path, clone(op.get("value")), insert=True)
        elif kind == "remove":
            doc, _ = _take(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _put(doc, path, clone(op.get("value")), insert=False)
        elif kind == "move":
            doc, value = _take(doc, op["from"])
            doc = _put(doc, path, value, insert=True)
        elif kind == "copy":
            doc = _put(doc, path, clone(_get(doc, op["from"])), insert=True)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise invalid_patch(f"testing value {path} failed")
        else:
            raise invalid_patch(f"unexpected kind of JSON patch operation: {kind!r}")
    return doc


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise invalid_patch(f"JSON pointer must start with '/': {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise invalid_patch("cannot operate on the whole document")
    current = doc
    for t in tokens[:-1]:
        current = _step(current, t, pointer)
    return current, tokens[-1]


def _step(current: Any, token: str, pointer: str) -> Any:
    if isinstance(current, dict) and token in current:
        return current[token]
    if isinstance(current, list) and token.isdigit() and int(token) < len(current):
        return current[int(token)]
    raise invalid_patch(f"doc is missing path: {pointer!r}")


def _get(doc: Any, pointer: str) -> Any:
    current = doc
    for t in _tokens(pointer):
        current = _step(current, t, pointer)
    return current


def _put(doc: Any, pointer: str, value: Any, insert: bool) -> Any:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            if insert:
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        else:
            raise invalid_patch(f"invalid index in {pointer!r}")
    else:
        raise invalid_patch(f"doc is missing path: {pointer!r}")
    return doc


def _take(doc: Any, pointer: str) -> tuple[Any, Any]:
    parent, last = _parent(doc, pointer)
    if isinstance(parent, dict) and last in parent:
        return doc, parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return doc, parent.pop(int(last))
    raise invalid_patch(f"doc is missing path: {pointer!r}")
