"""Admission for pods, as the API server's plugins decide it: PodSecurity, ResourceQuota
and ServiceAccount. Each function returns the reason a pod is refused (the text after
`pods "NAME" is forbidden: `), or None.

Sources (kubernetes/kubernetes):
- staging/src/k8s.io/pod-security-admission/admission/admission.go (EvaluatePod: the
  message `violates PodSecurity "LEVEL:VERSION": REASON (DETAIL), …`) and policy/check_*.go
  (each check's reason and detail; AggregateCheckResults joins them with ", ");
  api/constants.go (the namespace labels, `latest` when no version label).
- staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go
  (checkRequest: `exceeded quota: NAME, requested: …, used: …, limited: …`, each a sorted
  `resource=quantity` list; `must specify` when a tracked resource is missing) and
  pkg/quota/v1/evaluator/core/pods.go (what a pod counts: pods, requests.*, limits.*,
  `cpu`/`memory` as requests; terminal pods count nothing).
- plugin/pkg/admission/serviceaccount/admission.go (the pod's service account is
  `default` when unset, and must exist: `error looking up service account NS/NAME:
  serviceaccount "NAME" not found`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
LEVELS = ("privileged", "baseline", "restricted")

# --- PodSecurity ---------------------------------------------------------------------------

# check_capabilities_baseline.go: capabilities a baseline pod may add.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# check_restrictedVolumes.go: the volume types a restricted pod may use.
RESTRICTED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _names(kind: str, names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"` (check helpers' pluralize + joinQuote)."""
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"{kind}s {quoted}" if len(names) > 1 else f"{kind} {quoted}"


def _baseline(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    found: list[str] = []
    # check_hostNamespaces.go
    host = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if host:
        found.append(f"host namespaces ({', '.join(host)})")
    # check_privileged.go
    privileged = [
        c["name"] for c in _containers(spec) if (c.get("securityContext") or {}).get("privileged")
    ]
    if privileged:
        names = _names("container", privileged)
        found.append(f"privileged ({names} must not set securityContext.privileged=true)")
    # check_capabilities_baseline.go
    added = [
        c["name"]
        for c in _containers(spec)
        if set(((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or [])
        - BASELINE_CAPABILITIES
    ]
    if added:
        found.append(
            f"non-default capabilities ({_names('container', added)} must not include "
            "capabilities beyond the default set in securityContext.capabilities.add)"
        )
    # check_hostPathVolumes.go
    host_paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        found.append(f"hostPath volumes ({_names('volume', host_paths)})")
    # check_hostPorts.go
    ports = [
        c["name"] for c in _containers(spec) if any(p.get("hostPort") for p in c.get("ports") or [])
    ]
    if ports:
        found.append(f"hostPort ({_names('container', ports)} uses hostPorts)")
    return found


def _restricted(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    found: list[str] = []
    # check_restrictedVolumes.go
    bad_volumes = [
        v["name"]
        for v in spec.get("volumes") or []
        if not any(t in v for t in RESTRICTED_VOLUMES) and "hostPath" not in v
    ]
    if bad_volumes:
        found.append(
            f"restricted volume types ({_names('volume', bad_volumes)} uses a "
            "restricted volume type)"
        )
    # check_allowPrivilegeEscalation.go
    escalating = [
        c["name"]
        for c in containers
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]
    if escalating:
        found.append(
            f"allowPrivilegeEscalation != false ({_names('container', escalating)} must set "
            "securityContext.allowPrivilegeEscalation=false)"
        )
    # check_capabilities_restricted.go
    not_dropped = [
        c["name"]
        for c in containers
        if "ALL"
        not in (((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or [])
    ]
    if not_dropped:
        found.append(
            f"unrestricted capabilities ({_names('container', not_dropped)} must set "
            'securityContext.capabilities.drop=["ALL"])'
        )
    # check_runAsNonRoot.go: the pod's setting, overridden per container
    root = [
        c["name"]
        for c in containers
        if (c.get("securityContext") or {}).get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        is not True
    ]
    if root:
        found.append(
            f"runAsNonRoot != true (pod or {_names('container', root)} must set "
            "securityContext.runAsNonRoot=true)"
        )
    # check_runAsUser.go
    zero = [
        c["name"]
        for c in containers
        if (c.get("securityContext") or {}).get("runAsUser", pod_sc.get("runAsUser")) == 0
    ]
    if zero:
        found.append(f"runAsUser=0 (pod or {_names('container', zero)} must not set runAsUser=0)")
    # check_seccompProfile_restricted.go
    pod_profile = (pod_sc.get("seccompProfile") or {}).get("type")
    unconfined = [
        c["name"]
        for c in containers
        if ((c.get("securityContext") or {}).get("seccompProfile") or {}).get("type", pod_profile)
        not in ("RuntimeDefault", "Localhost")
    ]
    if unconfined:
        found.append(
            f"seccompProfile (pod or {_names('container', unconfined)} must set "
            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
        )
    return found


def pod_security(namespace: dict[str, Any], pod: dict[str, Any]) -> str | None:
    """The namespace's `enforce` level applied to the pod (privileged when unlabelled; an
    unknown level is treated as restricted, as PolicyToEvaluate does on a parse error)."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL, "privileged")
    if level == "privileged":
        return None
    if level not in LEVELS:
        level = "restricted"
    version = labels.get(ENFORCE_VERSION_LABEL, "latest")
    found = _baseline(pod)
    if level == "restricted":
        found += _restricted(pod)
    if not found:
        return None
    return f'violates PodSecurity "{level}:{version}": {", ".join(found)}'


# --- quantities ----------------------------------------------------------------------------

SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|[numkMGTPE]i?|)$")


def quantity(value: Any) -> Decimal:
    """A resource.Quantity's value (apimachinery/pkg/api/resource/quantity.go)."""
    m = QUANTITY_RE.match(str(value).strip())
    if not m:
        return Decimal(0)
    number, suffix = m.groups()
    if suffix[:1] in ("e", "E"):
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * SUFFIXES.get(suffix, Decimal(1))


def show_quantity(resource: str, value: Decimal) -> str:
    """A sum as Quantity.String() prints it: binary suffixes for memory, millicores for
    a fractional CPU, a plain number otherwise."""
    if "memory" in resource or "storage" in resource:
        for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
            unit = SUFFIXES[suffix]
            if value >= unit and value % unit == 0:
                return f"{value / unit:f}".rstrip("0").rstrip(".") + suffix
        return f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else f"{value:f}"
    if value != value.to_integral_value():
        return f"{(value * 1000).to_integral_value():f}m"
    return f"{value:f}".split(".")[0]


# --- ResourceQuota -------------------------------------------------------------------------


def pod_usage(pod: dict[str, Any]) -> dict[str, Decimal]:
    """What one pod counts against a quota (pods.go PodUsageFunc; init containers' maximum
    is left out: pdwatch's pods have none)."""
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        return {}
    usage: dict[str, Decimal] = {"pods": Decimal(1), "count/pods": Decimal(1)}
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for name, value in (resources.get(kind) or {}).items():
                key = f"{kind}.{name}"
                usage[key] = usage.get(key, Decimal(0)) + quantity(value)
    for name in ("cpu", "memory"):
        if f"requests.{name}" in usage:
            usage[name] = usage[f"requests.{name}"]
    return usage


def _pretty(values: dict[str, Decimal]) -> str:
    return ",".join(f"{k}={show_quantity(k, values[k])}" for k in sorted(values))


# pods.go validationSet: a quota on these needs every container to say its own
CONSTRAINED = frozenset(
    ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
)


def missing_constraints(pod: dict[str, Any], required: list[str]) -> str:
    """pods.go podEvaluator.Constraints: each required resource a container does not
    state, with the containers that miss it (`limits.memory for: engine; …`), or ""."""
    missing: dict[str, list[str]] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        has = set()
        for name in ("cpu", "memory"):
            if name in (resources.get("requests") or {}):
                has |= {name, f"requests.{name}"}
            if name in (resources.get("limits") or {}):
                has.add(f"limits.{name}")
        for name in required:
            if name not in has:
                missing.setdefault(name, []).append(str(container.get("name", "")))
    return "; ".join(f"{k} for: {','.join(sorted(v))}" for k, v in sorted(missing.items()))


def quota_usage(pods: list[dict[str, Any]]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for pod in pods:
        for key, value in pod_usage(pod).items():
            total[key] = total.get(key, Decimal(0)) + value
    return total


def resource_quota(
    quotas: list[dict[str, Any]], pods: list[dict[str, Any]], pod: dict[str, Any]
) -> str | None:
    """The first quota the new pod would exceed, with the plugin's words. `pods` are the
    namespace's other pods (what the quota controller's status.used counts)."""
    requested = pod_usage(pod)
    used = quota_usage(pods)
    for quota in sorted(quotas, key=lambda q: q["metadata"]["name"]):
        hard = {k: quantity(v) for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}
        missing = missing_constraints(pod, [k for k in hard if k in CONSTRAINED])
        if missing:
            return f"failed quota: {quota['metadata']['name']}: must specify {missing}"
        exceeded = sorted(
            k for k in hard if k in requested and used.get(k, Decimal(0)) + requested[k] > hard[k]
        )
        if exceeded:
            return (
                f"exceeded quota: {quota['metadata']['name']}, "
                f"requested: {_pretty({k: requested[k] for k in exceeded})}, "
                f"used: {_pretty({k: used.get(k, Decimal(0)) for k in exceeded})}, "
                f"limited: {_pretty({k: hard[k] for k in exceeded})}"
            )
    return None


def quota_status(quota: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """status.hard and status.used as the quota controller writes them."""
    hard = dict(((quota.get("spec") or {}).get("hard")) or {})
    used = quota_usage(pods)
    return {
        "hard": hard,
        "used": {k: show_quantity(k, used.get(k, Decimal(0))) for k in hard},
    }


# --- ServiceAccount ------------------------------------------------------------------------


def service_account_name(pod: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def missing_service_account(namespace: str, name: str) -> str:
    return f'error looking up service account {namespace}/{name}: serviceaccount "{name}" not found'
