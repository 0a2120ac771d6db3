"""What the API server rejects with 422 Invalid, per kind, worded as it words it.

Covers what pdwatch's objects touch: object names per kind, label and annotation keys
and values, ConfigMap/Secret keys and total size, Deployment selector/template agreement
and immutable selector, container and volume references, CronJob name length and schedule.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from devloop.sim import apinames as names
from devloop.sim.cron import validation_error as schedule_error
from devloop.sim.errors import Cause
from devloop.sim.resources import Resource

MAX_OBJECT_DATA = 1024 * 1024  # core.MaxSecretSize, used for ConfigMaps and Secrets
MAX_ANNOTATIONS = 256 * 1024

NAME_RULES = {
    "Namespace": names.dns1123_label,
    "Service": names.dns1035_label,
}


def validate(resource: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    causes = metadata_causes(resource, obj.get("metadata") or {})
    check = KIND_CHECKS.get(resource.kind)
    if check:
        causes += check(obj)
    if old is None:
        return causes
    if resource.kind in ("Deployment", "ReplicaSet"):
        old_sel = (old.get("spec") or {}).get("selector")
        new_sel = (obj.get("spec") or {}).get("selector")
        if old_sel != new_sel:
            causes.append(Cause.invalid("spec.selector", _go_map(new_sel), "field is immutable"))
    if resource.kind in ("ConfigMap", "Secret") and old.get("immutable"):
        causes += _immutable_data(obj, old)
    return causes + _finalizers_while_deleting(obj, old)


IMMUTABLE = "field is immutable when `immutable` is set"


def _immutable_data(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """pkg/apis/core/validation ValidateConfigMapUpdate / ValidateSecretUpdate: once
    immutable, neither the data nor the flag may change."""
    causes = []
    if not obj.get("immutable"):
        causes.append(Cause.forbidden("immutable", IMMUTABLE))
    for section in ("data", "binaryData"):
        if (obj.get(section) or {}) != (old.get(section) or {}):
            causes.append(Cause.forbidden(section, IMMUTABLE))
    return causes


def _finalizers_while_deleting(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """apimachinery ValidateObjectMetaUpdate: no finalizer may be added to an object that
    is being deleted."""
    if not (old.get("metadata") or {}).get("deletionTimestamp"):
        return []
    before = set((old.get("metadata") or {}).get("finalizers") or [])
    added = [f for f in (obj.get("metadata") or {}).get("finalizers") or [] if f not in before]
    if not added:
        return []
    listed = ", ".join(json.dumps(f) for f in added)
    return [
        Cause.forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted, found new "
            f"finalizers []string{{{listed}}}",
        )
    ]


def metadata_causes(resource: Resource, meta: dict[str, Any]) -> list[Cause]:
    causes = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            causes.append(Cause.required("metadata.name", "name or generateName is required"))
    else:
        rule = NAME_RULES.get(resource.kind, names.dns1123_subdomain)
        causes += [Cause.invalid("metadata.name", name, e) for e in rule(name)]
    for key, value in (meta.get("labels") or {}).items():
        causes += [Cause.invalid("metadata.labels", key, e) for e in names.qualified_name(key)]
        if not isinstance(value, str):
            causes.append(Cause.invalid(f"metadata.labels[{key}]", value, "must be a string"))
            continue
        causes += [Cause.invalid("metadata.labels", value, e) for e in names.label_value(value)]
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += [
            Cause.invalid("metadata.annotations", key, e) for e in names.qualified_name(key.lower())
        ]
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > MAX_ANNOTATIONS:
        causes.append(Cause.too_long("metadata.annotations", MAX_ANNOTATIONS))
    return causes


def _config_map(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for section in ("data", "binaryData"):
        for key, value in (obj.get(section) or {}).items():
            causes += [
                Cause.invalid(f"{section}[{key}]", key, e) for e in names.config_map_key(key)
            ]
            total += len(str(value).encode("utf-8")) if section == "data" else len(str(value))
    dup = set(obj.get("data") or {}) & set(obj.get("binaryData") or {})
    causes += [
        Cause.invalid(f"data[{k}]", k, "duplicate of key present in binaryData")
        for k in sorted(dup)
    ]
    if total > MAX_OBJECT_DATA:
        causes.append(Cause.too_long("", MAX_OBJECT_DATA))
    return causes


def _secret(obj: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for key, value in (obj.get("data") or {}).items():
        causes += [Cause.invalid(f"data[{key}]", key, e) for e in names.config_map_key(key)]
        try:
            total += len(base64.b64decode(str(value), validate=True))
        except (binascii.Error, ValueError):
            causes.append(
                Cause.invalid(
                    f"data[{key}]", "<secret contents redacted>", "must be base64-encoded"
                )
            )
    if total > MAX_OBJECT_DATA:
        causes.append(Cause.too_long("data", MAX_OBJECT_DATA))
    return causes


def _service(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = []
    ports = spec.get("ports") or []
    if not ports and spec.get("type", "ClusterIP") != "ExternalName":
        causes.append(Cause.required("spec.ports"))
    for i, port in enumerate(ports):
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(
                Cause.invalid(
                    f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive"
                )
            )
    return causes


def pod_spec_causes(spec: dict[str, Any], path: str) -> list[Cause]:
    causes = []
    volumes = spec.get("volumes") or []
    volume_names = set()
    for i, volume in enumerate(volumes):
        vname = volume.get("name", "")
        causes += [
            Cause.invalid(f"{path}.volumes[{i}].name", vname, e) for e in names.dns1123_label(vname)
        ]
        if vname in volume_names:
            causes.append(
                Cause(
                    f"{path}.volumes[{i}].name",
                    f"Duplicate value: {json.dumps(vname)}",
                    "FieldValueDuplicate",
                )
            )
        volume_names.add(vname)
        for j, item in enumerate(
            (volume.get("configMap") or volume.get("secret") or {}).get("items") or []
        ):
            where = f"{path}.volumes[{i}].{'configMap' if 'configMap' in volume else 'secret'}"
            causes += [
                Cause.invalid(f"{where}.items[{j}].key", item.get("key", ""), e)
                for e in names.config_map_key(item.get("key", ""))
            ]
            ipath = item.get("path", "")
            if not ipath:
                causes.append(Cause.required(f"{where}.items[{j}].path"))
            elif ipath.startswith("/"):
                causes.append(
                    Cause.invalid(f"{where}.items[{j}].path", ipath, "must be a relative path")
                )
            elif ".." in ipath.split("/"):
                causes.append(
                    Cause.invalid(f"{where}.items[{j}].path", ipath, "must not contain '..'")
                )
    containers = spec.get("containers") or []
    if not containers:
        causes.append(Cause.required(f"{path}.containers"))
    for i, c in enumerate(containers):
        where = f"{path}.containers[{i}]"
        cname = c.get("name", "")
        if not cname:
            causes.append(Cause.required(f"{where}.name"))
        else:
            causes += [Cause.invalid(f"{where}.name", cname, e) for e in names.dns1123_label(cname)]
        if not c.get("image"):
            causes.append(Cause.required(f"{where}.image"))
        for j, mount in enumerate(c.get("volumeMounts") or []):
            if mount.get("name") not in volume_names:
                causes.append(
                    Cause(
                        f"{where}.volumeMounts[{j}].name",
                        f"Not found: {json.dumps(mount.get('name'))}",
                        "FieldValueNotFound",
                    )
                )
            if not mount.get("mountPath"):
                causes.append(Cause.required(f"{where}.volumeMounts[{j}].mountPath"))
    runtime_class = spec.get("runtimeClassName")
    if runtime_class is not None:
        causes += [
            Cause.invalid(f"{path}.runtimeClassName", runtime_class, e)
            for e in names.dns1123_subdomain(runtime_class)
        ]
    return causes


def _template_causes(spec: dict[str, Any], path: str) -> list[Cause]:
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    causes = []
    selector = spec.get("selector")
    if not selector:
        causes.append(Cause.required(f"{path}.selector"))
    else:
        match = selector.get("matchLabels") or {}
        if not match and not selector.get("matchExpressions"):
            causes.append(
                Cause.invalid(
                    f"{path}.selector",
                    _go_map(selector),
                    "empty selector is invalid for deployment",
                )
            )
        if any(labels.get(k) != v for k, v in match.items()):
            causes.append(
                Cause.invalid(
                    f"{path}.template.metadata.labels",
                    _go_map(labels),
                    "`selector` does not match template `labels`",
                )
            )
    causes += pod_spec_causes(template.get("spec") or {}, f"{path}.template.spec")
    return causes


def _deployment(obj: dict[str, Any]) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _template_causes(spec, "spec")
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        causes.append(
            Cause.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
        )
    return causes


def _cronjob(obj: dict[str, Any]) -> list[Cause]:
    causes = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if len(name) > names.CRONJOB_NAME_MAX:
        causes.append(
            Cause.invalid(
                "metadata.name", name, f"must be no more than {names.CRONJOB_NAME_MAX} characters"
            )
        )
    spec = obj.get("spec") or {}
    schedule = spec.get("schedule")
    if not schedule:
        causes.append(Cause.required("spec.schedule"))
    else:
        problem = schedule_error(str(schedule))
        if problem:
            causes.append(Cause.invalid("spec.schedule", schedule, problem))
    policy = spec.get("concurrencyPolicy", "Allow")
    if policy not in ("Allow", "Forbid", "Replace"):
        causes.append(
            Cause.not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"])
        )
    pod = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
    causes += pod_spec_causes(pod.get("spec") or {}, "spec.jobTemplate.spec.template.spec")
    restart = (pod.get("spec") or {}).get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(
            Cause.not_supported(
                "spec.jobTemplate.spec.template.spec.restartPolicy",
                restart or "",
                ["OnFailure", "Never"],
            )
        )
    return causes


def _pod(obj: dict[str, Any]) -> list[Cause]:
    """A pod's own spec, and what only a pod (not a template) is held to: an image without
    leading or trailing white space (validateContainersOnlyForPod; a template keeps it, so
    a Deployment with "engine:1\n" is stored and its pods are refused at creation)."""
    spec = obj.get("spec") or {}
    causes = pod_spec_causes(spec, "spec")
    for i, container in enumerate(spec.get("containers") or []):
        image = container.get("image") or ""
        if image != image.strip(_GO_SPACE):
            causes.append(
                Cause.invalid(
                    f"spec.containers[{i}].image",
                    image,
                    "must not have leading or trailing whitespace",
                )
            )
    return causes


# strings.TrimSpace's white space (unicode.IsSpace)
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def _go_map(value: Any) -> str:
    """Maps in field errors print as Go's %v: map[key:value]."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_map(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


KIND_CHECKS = {
    "ConfigMap": _config_map,
    "Secret": _secret,
    "Service": _service,
    "Deployment": _deployment,
    "ReplicaSet": _deployment,
    "CronJob": _cronjob,
    "Pod": _pod,
}
