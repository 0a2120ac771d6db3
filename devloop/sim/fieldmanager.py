"""Field ownership (`metadata.managedFields`) and server-side apply.

A simplified structured-merge-diff: fields are paths (`f:spec`, `f:replicas`; list items of
associative lists as `k:{"name":"engine"}` with a `.` for the item itself), each manager
owns a set of them. Apply sets the applied fields, removes the fields the same manager
applied before and no longer applies (when nobody else owns them), and reports a 409
conflict for a field another manager owns with a different value unless forced. The
conflict text follows the API server ("Apply failed with 1 conflict: conflict with
"kubectl" using apps/v1: .spec.replicas"; kubernetes/kubernetes#80916, #107417).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from devloop.sim.clone import clone
from devloop.sim.errors import ApiError

FieldPath = tuple[str, ...]
MISSING: Any = object()

# Associative lists (listType=map) and their keys, by field name (k8s.io/api listMapKey tags).
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
}
TRACKED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")


def list_keys(name: str, items: list[Any]) -> tuple[str, ...] | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if name == "ports":
        return (
            ("containerPort", "protocol") if "containerPort" in items[0] else ("port", "protocol")
        )
    return LIST_KEYS.get(name)


# List-map keys the API server defaults before merging (core/v1 defaults: a port's
# protocol is TCP), so that an applied item without the key still meets its live twin.
DEFAULTED_KEYS = {"ports": {"protocol": "TCP"}}


def default_list_keys(value: Any, name: str = "") -> Any:
    """The apply configuration with defaulted list-map keys filled in (in place)."""
    if isinstance(value, dict):
        for key, child in value.items():
            default_list_keys(child, key)
    elif isinstance(value, list):
        defaults = DEFAULTED_KEYS.get(name, {})
        for item in value:
            if isinstance(item, dict):
                for key, default in defaults.items():
                    item.setdefault(key, default)
                default_list_keys(item)
    return value


def item_token(keys: tuple[str, ...], item: dict[str, Any]) -> str:
    ident = {k: item[k] for k in sorted(keys) if k in item}
    return "k:" + json.dumps(ident, separators=(",", ":"), ensure_ascii=False)


def fields_of(obj: dict[str, Any], *, status: bool = False) -> set[FieldPath]:
    """The field paths an object (or an apply configuration) sets."""
    out: set[FieldPath] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "status" and not status:
            continue
        if key == "metadata":
            meta = value or {}
            for sub in TRACKED_METADATA:
                if sub in meta:
                    out |= _fields(meta[sub], ("f:metadata", f"f:{sub}"), sub)
            continue
        out |= _fields(value, (f"f:{key}",), key)
    return out


def _fields(value: Any, path: FieldPath, name: str) -> set[FieldPath]:
    if isinstance(value, dict) and value:
        out: set[FieldPath] = set()
        for k, v in value.items():
            out |= _fields(v, (*path, f"f:{k}"), k)
        return out
    if isinstance(value, list):
        keys = list_keys(name, value)
        if keys:
            out = set()
            for item in value:
                item_path = (*path, item_token(keys, item))
                out.add((*item_path, "."))
                for k, v in item.items():
                    out |= _fields(v, (*item_path, f"f:{k}"), k)
            return out
    return {path}


def value_at(obj: Any, path: FieldPath) -> Any:
    current = obj
    for token in path:
        if token == ".":
            return current
        if token.startswith("f:"):
            if not isinstance(current, dict) or token[2:] not in current:
                return MISSING
            current = current[token[2:]]
        else:
            found = _find_item(current, token)
            if found is None:
                return MISSING
            current = current[found]
    return current


def _find_item(items: Any, token: str) -> int | None:
    if not isinstance(items, list):
        return None
    ident = json.loads(token[2:])
    for index, item in enumerate(items):
        if isinstance(item, dict) and all(item.get(k) == v for k, v in ident.items()):
            return index
    return None


def remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove the field (or, for `…/.`, the list item) at path, if present."""
    if path and path[-1] == ".":
        parent = value_at(obj, path[:-2])
        index = _find_item(parent, path[-2])
        if index is not None:
            parent.pop(index)
        return
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)


def describe(path: FieldPath) -> str:
    """`.spec.template.spec.containers[name="engine"].image`, as conflicts name fields."""
    out = ""
    for token in path:
        if token == ".":
            continue
        if token.startswith("f:"):
            out += "." + token[2:]
        else:
            ident = json.loads(token[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in ident.items()) + "]"
    return out


def merge_applied(live: Any, config: Any, name: str = "") -> Any:
    """Apply semantics: maps merge, associative lists merge by key, the rest is replaced."""
    if isinstance(config, dict) and isinstance(live, dict):
        out = dict(live)
        for k, v in config.items():
            out[k] = merge_applied(live.get(k), v, k)
        return out
    if isinstance(config, list) and isinstance(live, list):
        keys = list_keys(name, config) or list_keys(name, live)
        if keys and all(isinstance(i, dict) for i in live + config):
            merged = []
            live_by_token = {item_token(keys, i): i for i in live}
            config_tokens = set()
            for item in config:
                token = item_token(keys, item)
                config_tokens.add(token)
                merged.append(merge_applied(live_by_token.get(token), item))
            merged += [i for i in live if item_token(keys, i) not in config_tokens]
            return merged
    return clone(config)


# --- managedFields entries ---------------------------------------------------------------


@dataclass
class Entry:
    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str
    fields: set[FieldPath] = field(default_factory=set)
    subresource: str = ""

    def same_owner(self, other: Entry) -> bool:
        return (self.manager, self.operation, self.subresource) == (
            other.manager,
            other.operation,
            other.subresource,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(self.fields),
        }
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def to_fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for token in path:
            node = node.setdefault(token, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for token, child in tree.items():
        path = (*prefix, token)
        if child:
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def read_entries(obj: dict[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    out = []
    for e in obj.get("metadata", {}).get("managedFields") or []:
        out.append(
            Entry(
                e.get("manager", ""),
                e.get("operation", "Update"),
                e.get("apiVersion", ""),
                e.get("time", ""),
                from_fields_v1(e.get("fieldsV1") or {}),
                e.get("subresource", ""),
            )
        )
    return out


def write_entries(obj: dict[str, Any], entries: list[Entry]) -> None:
    kept = [e.to_json() for e in entries if e.fields]
    obj.setdefault("metadata", {})["managedFields"] = kept


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    manager: str
    api_version: str
    path: FieldPath


def conflict_error(kind_name: str, conflicts: list[Conflict]) -> ApiError:
    by_manager: dict[tuple[str, str], list[str]] = {}
    for c in conflicts:
        by_manager.setdefault((c.manager, c.api_version), []).append(describe(c.path))
    parts = []
    for (manager, version), paths in by_manager.items():
        if len(paths) == 1:
            parts.append(f'conflict with "{manager}" using {version}: {paths[0]}')
        else:
            parts.append(
                f'conflicts with "{manager}" using {version}:\n'
                + "\n".join(f"- {p}" for p in paths)
            )
    n = len(conflicts)
    message = f"Apply failed with {n} conflict{'s' if n != 1 else ''}: " + "\n".join(parts)
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{c.manager}" using {c.api_version}',
            "field": describe(c.path),
        }
        for c in conflicts
    ]
    return ApiError(409, "Conflict", message, {"causes": causes, **_split(kind_name)})


def _split(kind_name: str) -> dict[str, str]:
    kind, _, name = kind_name.partition("/")
    return {"name": name, "kind": kind}


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    kind_name: str,
) -> dict[str, Any]:
    """The object after `manager` applies `config` to `live` (None: it does not exist yet)."""
    entries = read_entries(live)
    applied = fields_of(config)
    me = Entry(manager, "Apply", api_version, now)
    conflicts: list[Conflict] = []
    for entry in entries:
        if entry.same_owner(me):
            continue
        for path in sorted(applied & entry.fields):
            if path[-1] == ".":
                continue
            if value_at(live, path) != value_at(config, path):
                conflicts.append(Conflict(entry.manager, entry.api_version, path))
    if conflicts and not force:
        raise conflict_error(kind_name, conflicts)
    for c in conflicts:
        for entry in entries:
            if entry.manager == c.manager and not entry.same_owner(me):
                entry.fields.discard(c.path)
    previous = next((e.fields for e in entries if e.same_owner(me)), set())
    others: set[FieldPath] = set()
    for entry in entries:
        if not entry.same_owner(me):
            others |= entry.fields
    obj = clone(live) if live else {}
    for path in sorted(previous - applied - others, key=len, reverse=True):
        if path[-1] == "." and any(o[: len(path) - 1] == path[:-1] for o in others):
            continue  # another manager still owns fields of this list item: keep the item
        remove_path(obj, path)
    obj = cast(dict[str, Any], merge_applied(obj, config))
    me.fields = applied
    entries = [e for e in entries if not e.same_owner(me)] + [me]
    write_entries(obj, entries)
    return obj


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    api_version: str,
    now: str,
    subresource: str = "",
) -> None:
    """An update (create, PUT, non-apply PATCH) takes ownership of the fields it changed."""
    status = subresource == "status"
    entries = read_entries(old)
    old_fields = fields_of(old, status=status) if old else set()
    new_fields = fields_of(new, status=status)
    changed = {p for p in new_fields if p not in old_fields or value_at(old, p) != value_at(new, p)}
    removed = old_fields - new_fields
    for entry in entries:
        entry.fields -= changed | removed
    if changed:
        me = Entry(manager, "Update", api_version, now, subresource=subresource)
        current = next((e for e in entries if e.same_owner(me)), None)
        if current:
            current.fields |= changed
            current.time = now
        else:
            me.fields = changed
            entries.append(me)
    write_entries(new, entries)
