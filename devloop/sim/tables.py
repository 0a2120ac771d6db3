"""Table responses (meta.k8s.io/v1), what `kubectl get` asks for and prints.

kubectl sends `Accept: application/json;as=Table;v=v1;g=meta.k8s.io,…,application/json`;
the API server answers with columns and pre-formatted cells from its printers
(kubernetes pkg/printers/internalversion/printers.go), always the wide set: kubectl
hides the columns of priority 1 unless `-o wide`. Kinds without a printer get the
server's default table, Name and Created At (apiserver rest.NewDefaultTableConvertor).
Ages are formatted as apimachinery's duration.HumanDuration does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from devloop.sim.store import parse_rfc3339

Obj = dict[str, Any]
Column = tuple[str, str, int]  # name, type, priority (1: only with -o wide)

AGE: Column = ("Age", "string", 0)
NAME: Column = ("Name", "string", 0)
WIDE_TEMPLATE: list[Column] = [
    ("Containers", "string", 1),
    ("Images", "string", 1),
    ("Selector", "string", 1),
]


def wanted_table_version(accept: str) -> str | None:
    """The meta.k8s.io version of the first Table media type in `accept`, if any; the
    API server takes the first media type it can serve, and it serves Tables."""
    for media in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            if params.get("v") in ("v1", "v1beta1"):
                return params["v"]
        elif media.split(";")[0].strip() in ("application/json", "*/*"):
            return None
    return None


def human_duration(seconds: float) -> str:
    """apimachinery duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    return human_duration(time.time() - parse_rfc3339(timestamp))


def age(obj: Obj) -> str:
    return since(obj["metadata"].get("creationTimestamp"))


def format_selector(selector: Obj | None) -> str:
    """metav1.FormatLabelSelector."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), sorted(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts)) or "<none>"


def format_labels(labels: dict[str, str] | None) -> str:
    """labels.FormatLabels: sorted k=v pairs, or <none>."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def containers_and_images(template: Obj) -> list[str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    ]


# --- one printer per kind ----------------------------------------------------------------------


def pod_cells(pod: Obj) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    reason = status.get("reason") or status.get("phase", "")
    restarts, ready, last_restart = 0, 0, ""
    running = False
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount", 0))
        finished = ((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt", "")
        last_restart = max(last_restart, finished)
        state = cs.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated is not None and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated is not None:
            code, signal = terminated.get("exitCode", 0), terminated.get("signal", 0)
            reason = f"Signal:{signal}" if signal else f"ExitCode:{code}"
        elif cs.get("ready") and "running" in state:
            running = True
            ready += 1
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if reason == "Completed" and running:
        reason = "Running" if conditions.get("Ready") == "True" else "NotReady"
    if pod["metadata"].get("deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        reason = "Terminating"
    restarts_text = str(restarts)
    if restarts and last_restart:
        restarts_text = f"{restarts} ({since(last_restart)} ago)"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    gates_text = "<none>"
    if gates:
        true = sum(conditions.get(g.get("conditionType")) == "True" for g in gates)
        gates_text = f"{true}/{len(gates)}"
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        reason,
        restarts_text,
        age(pod),
        (ips[0].get("ip") if ips else "") or status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        gates_text,
    ]


def deployment_cells(d: Obj) -> list[Any]:
    spec, status = d.get("spec") or {}, d.get("status") or {}
    return [
        d["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(d),
        *containers_and_images(spec.get("template") or {}),
        format_selector(spec.get("selector")),
    ]


def replicaset_cells(rs: Obj) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    return [
        rs["metadata"]["name"],
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        age(rs),
        *containers_and_images(spec.get("template") or {}),
        format_selector(spec.get("selector")),
    ]


def service_cells(svc: Obj) -> list[Any]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or []
    kind = spec.get("type", "ClusterIP")
    external = ",".join(spec.get("externalIPs") or []) or "<none>"
    if kind == "LoadBalancer" and external == "<none>":
        external = "<pending>"
    ports = ",".join(
        f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort")
        else f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    return [
        svc["metadata"]["name"],
        kind,
        ips[0] if ips else "<none>",
        external,
        ports or "<none>",
        age(svc),
        format_labels(spec.get("selector")),
    ]


def cronjob_cells(cj: Obj) -> list[Any]:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    suspend = spec.get("suspend")
    last = status.get("lastScheduleTime")
    return [
        cj["metadata"]["name"],
        spec.get("schedule", ""),
        spec.get("timeZone") or "<none>",
        "<unset>" if suspend is None else str(bool(suspend)),
        len(status.get("active") or []),
        since(last) if last else "<none>",
        age(cj),
        *containers_and_images(job_spec.get("template") or {}),
        format_selector(job_spec.get("selector")),
    ]


def job_cells(job: Obj) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    completions = spec.get("completions")
    parallelism = spec.get("parallelism", 1)
    succeeded = status.get("succeeded", 0)
    if completions is not None:
        done = f"{succeeded}/{completions}"
    elif parallelism > 1:
        done = f"{succeeded}/1 of {parallelism}"
    else:
        done = f"{succeeded}/1"
    started, ended = status.get("startTime"), status.get("completionTime")
    duration = ""
    if started and ended:
        duration = human_duration(parse_rfc3339(ended) - parse_rfc3339(started))
    elif started:
        duration = since(started)
    conditions = {
        c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"
    }
    if "Complete" in conditions:
        state = "Complete"
    elif "Failed" in conditions:
        state = "Failed"
    elif job["metadata"].get("deletionTimestamp"):
        state = "Terminating"
    elif "Suspended" in conditions:
        state = "Suspended"
    elif "FailureTarget" in conditions:
        state = "FailureTarget"
    else:
        state = "Running"
    return [
        job["metadata"]["name"],
        state,
        done,
        duration,
        age(job),
        *containers_and_images(spec.get("template") or {}),
        format_selector(spec.get("selector")),
    ]


def event_cells(ev: Obj) -> list[Any]:
    first = since(ev.get("firstTimestamp") or ev.get("eventTime"))
    last = since(ev["lastTimestamp"]) if ev.get("lastTimestamp") else first
    count = int(ev.get("count") or 0)
    if count > 1:
        last = f"{last} (x{count} over {first})"
    involved = ev.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = ev.get("source") or {}
    origin = source.get("component") or ev.get("reportingComponent") or ""
    if source.get("host"):
        origin = f"{origin}, {source['host']}"
    return [
        last,
        ev.get("type", ""),
        ev.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        origin,
        (ev.get("message") or "").strip(),
        first,
        count,
        ev["metadata"]["name"],
    ]


def node_cells(node: Obj) -> list[Any]:
    status = node.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    state = "Ready" if ready else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    prefix = "node-role.kubernetes.io/"
    roles = sorted(
        key[len(prefix) :]
        for key in (node["metadata"].get("labels") or {})
        if key.startswith(prefix) and key[len(prefix) :]
    )
    info = status.get("nodeInfo") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    return [
        node["metadata"]["name"],
        state,
        ",".join(roles) or "<none>",
        age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or "<none>",
        addresses.get("ExternalIP") or "<none>",
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    "Pod": (
        [
            NAME,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            AGE,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        pod_cells,
    ),
    "Deployment": (
        [
            NAME,
            ("Ready", "string", 0),
            ("Up-to-date", "string", 0),
            ("Available", "string", 0),
            AGE,
            *WIDE_TEMPLATE,
        ],
        deployment_cells,
    ),
    "ReplicaSet": (
        [
            NAME,
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            AGE,
            *WIDE_TEMPLATE,
        ],
        replicaset_cells,
    ),
    "Service": (
        [
            NAME,
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            AGE,
            ("Selector", "string", 1),
        ],
        service_cells,
    ),
    "ConfigMap": (
        [NAME, ("Data", "string", 0), AGE],
        lambda cm: [
            cm["metadata"]["name"],
            len(cm.get("data") or {}) + len(cm.get("binaryData") or {}),
            age(cm),
        ],
    ),
    "Secret": (
        [NAME, ("Type", "string", 0), ("Data", "string", 0), AGE],
        lambda s: [s["metadata"]["name"], s.get("type", ""), len(s.get("data") or {}), age(s)],
    ),
    "Job": (
        [
            NAME,
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            AGE,
            *WIDE_TEMPLATE,
        ],
        job_cells,
    ),
    "CronJob": (
        [
            NAME,
            ("Schedule", "string", 0),
            ("Timezone", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Last Schedule", "string", 0),
            AGE,
            *WIDE_TEMPLATE,
        ],
        cronjob_cells,
    ),
    "Event": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        event_cells,
    ),
    "Namespace": (
        [NAME, ("Status", "string", 0), AGE],
        lambda ns: [ns["metadata"]["name"], (ns.get("status") or {}).get("phase", ""), age(ns)],
    ),
    "Node": (
        [
            NAME,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            AGE,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        node_cells,
    ),
    "RuntimeClass": (
        [NAME, ("Handler", "string", 0), AGE],
        lambda rc: [rc["metadata"]["name"], rc.get("handler", ""), age(rc)],
    ),
}
DEFAULT: tuple[list[Column], Callable[[Obj], list[Any]]] = (
    [NAME, ("Created At", "date", 0)],
    lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")],
)


def table(
    kind: str,
    objects: list[Obj],
    version: str,
    resource_version: str,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    """A Table of `objects` (all of kind `kind`). Without columns: a watch event after
    the first, which the API server sends without the column definitions."""
    columns, cells = PRINTERS.get(kind, DEFAULT)
    out: Obj = {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": {"resourceVersion": resource_version},
        "rows": [_row(obj, cells(obj), version, include_object) for obj in objects],
    }
    if with_columns:
        out["columnDefinitions"] = [
            {
                "name": name,
                "type": type_,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, type_, priority in columns
        ]
    return out


def _row(obj: Obj, cells: list[Any], version: str, include_object: str) -> Obj:
    row: Obj = {"cells": cells}
    if include_object == "Object":
        row["object"] = obj
    elif include_object != "None":
        row["object"] = {
            "kind": "PartialObjectMetadata",
            "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj["metadata"],
        }
    return row
