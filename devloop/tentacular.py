"""What only the Tentacular format's reference generates (TENTACULAR.md §1-§4): Deno
permission flags derived from the contract, the `tentacular.dev/*` annotations, the
import-map ConfigMap and the NetworkPolicy. Pure functions of the workflow and its
(scanned) contract; manifests.py puts them in place.

Two of the reference's known defects are not reproduced (README, "Formats"): the module
proxy's egress rule names the proxy's namespace (`tentacular-support`, as the import map
does, where the reference left it empty), and the import map is mounted where Deno finds
it (`/app/engine/deno.json`, as the reference's later releases do).
"""

from __future__ import annotations

import json
from typing import Any

from devloop.contract import DYNAMIC, MODULE_PROTOCOLS, Contract, Dependency, port_spec
from devloop.workflow import Workflow

MANAGED_BY = "tentacular"
ENGINE_PORT = 8080  # the engine's, in both formats (manifests.ENGINE_PORT)
PROXY_NAMESPACE = "tentacular-support"
PROXY_HOST = f"esm-sh.{PROXY_NAMESPACE}.svc.cluster.local:8080"
PROXY_URL = f"http://{PROXY_HOST}"
IMPORT_MAP_MOUNT = "/app/engine/deno.json"
DENO_DIR = "/tmp/deno-cache"
TMP_LIMIT = "512Mi"
TRIGGER_ROLE = {"tentacular.dev/role": "trigger"}
STD = f"{PROXY_URL}/gh/denoland/deno_std@0.224.0"
# The engine's own imports, rewritten through the proxy (§3).
ENGINE_IMPORTS = {
    "tentacular": "./mod.ts",
    "std/": f"{STD}/",
    "std/yaml": f"{STD}/yaml/mod.ts",
    "std/path": f"{STD}/path/mod.ts",
    "std/flags": f"{STD}/flags/mod.ts",
    "std/assert": f"{STD}/assert/mod.ts",
    "@std/fmt/colors": f"{STD}/fmt/colors.ts",
    "@std/io": f"{STD}/io/mod.ts",
    "@std/bytes": f"{STD}/bytes/mod.ts",
    "@nats-io/transport-deno": f"{PROXY_URL}/jsr/@nats-io/transport-deno@3.3.0",
}
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def _dns_rule(protocol: str) -> dict[str, Any]:
    """A fresh dict each time: shared ones would print as YAML anchors."""
    peer = {
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    }
    return {"to": [peer], "ports": [{"protocol": protocol, "port": 53}]}


def small_labels(wf: Workflow) -> dict[str, str]:
    """The import map's and the NetworkPolicy's labels: no version."""
    return {"app.kubernetes.io/name": wf.name, "app.kubernetes.io/managed-by": MANAGED_BY}


def metadata_annotations(wf: Workflow, *, cron: bool) -> dict[str, str]:
    """The `tentacular.dev/*` annotations, in the reference's order, only those that are
    non-empty; `cron`: the Deployment's also carry the schedules (the Service's never)."""
    meta = wf.metadata
    out = {
        "tentacular.dev/owner": meta.owner,
        "tentacular.dev/team": meta.team,
        "tentacular.dev/tags": ",".join(meta.tags),
        "tentacular.dev/environment": meta.environment,
    }
    if cron:
        schedules = [t.schedule for t in wf.cron_triggers if t.schedule]
        out["tentacular.dev/cron-schedule"] = ",".join(schedules)
    return {key: value for key, value in out.items() if value}


def webhook_secret_problem(
    wf: Workflow, contract: Contract | None, secrets: dict[str, bytes] | None
) -> str | None:
    """Why the engine would not start, or None. With a webhook trigger it reads
    `secrets.github.webhook_secret`, else the WEBHOOK_SECRET variable; with flags derived
    from a contract, `--allow-env` does not name it, and Deno 2 refuses the read: the
    engine exits at start (TENTACULAR.md §2). Only the secret's keys are looked at."""
    if not any(t.type == "webhook" for t in wf.triggers) or deno_command(contract) is None:
        return None
    try:
        github = json.loads((secrets or {}).get("github", b"{}"))
    except ValueError:
        github = None
    if isinstance(github, dict) and isinstance(github.get("webhook_secret"), str):
        return None
    return (
        "a webhook trigger needs secrets.github.webhook_secret: without it the engine reads "
        "the WEBHOOK_SECRET variable, which the contract's Deno flags (--allow-env="
        "DENO_DIR,HOME,TELEMETRY_SINK) do not allow, and fails to start; add webhook_secret "
        "to the JSON of the `github` secret"
    )


def _network_dependencies(contract: Contract) -> list[Dependency]:
    return [
        d
        for d in contract.dependencies
        if d.protocol not in MODULE_PROTOCOLS and d.type != DYNAMIC and d.host
    ]


def allow_net(contract: Contract) -> str:
    if contract.dynamic:
        return "--allow-net"
    hosts = {
        f"{d.host}:{port}"
        for d in _network_dependencies(contract)
        if (port := d.effective_port) is not None
    }
    hosts |= {PROXY_HOST, f"0.0.0.0:{ENGINE_PORT}"}
    return "--allow-net=" + ",".join(sorted(hosts))


def deno_command(contract: Contract | None) -> tuple[list[str], list[str]] | None:
    """The container's command and args, or None (the image's ENTRYPOINT runs) when the
    contract declares no dependency (§1.4)."""
    if contract is None or not contract.dependencies:
        return None
    args = [
        "run",
        "--no-lock",
        "--unstable-net",
        allow_net(contract),
        "--allow-read=/app",
        "--allow-write=/tmp",
        "--allow-env=DENO_DIR,HOME,TELEMETRY_SINK",
        f"--allow-import=deno.land:443,{PROXY_HOST}",
        "engine/main.ts",
        "--workflow",
        "/app/workflow/workflow.yaml",
        "--port",
        str(ENGINE_PORT),
    ]
    return ["deno"], args


def import_map_json(contract: Contract | None) -> str:
    """deno.json: the engine's imports and the contract's jsr/npm modules, through the
    proxy; sorted keys, 2-space indent, a final newline (§3)."""
    imports = dict(ENGINE_IMPORTS)
    for dep in contract.dependencies if contract else ():
        if dep.protocol not in MODULE_PROTOCOLS or not dep.host:
            continue
        base = f"{PROXY_URL}/jsr/{dep.host}" if dep.protocol == "jsr" else f"{PROXY_URL}/{dep.host}"
        target = f"{base}@{dep.version}" if dep.version else base
        if dep.version:
            imports[f"{dep.protocol}:{dep.host}@{dep.version}"] = target
        imports[f"{dep.protocol}:{dep.host}"] = target
    document = {
        "compilerOptions": {"noUncheckedIndexedAccess": True, "strict": True},
        "imports": imports,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def import_map(wf: Workflow, namespace: str, contract: Contract | None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": import_map_name(wf),
            "namespace": namespace,
            "labels": small_labels(wf),
            "annotations": {"tentacular.dev/proxy-url": PROXY_URL},
        },
        "data": {"deno.json": import_map_json(contract)},
    }


def import_map_name(wf: Workflow) -> str:
    return f"{wf.name}-import-map"


def network_policy_name(wf: Workflow) -> str:
    return f"{wf.name}-netpol"


def _tcp(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def _egress_rules(contract: Contract) -> list[tuple[tuple[str, int, str], dict[str, Any]]]:
    """(sort key, rule) for each dependency and additional egress (§4, rule 3)."""
    out: list[tuple[tuple[str, int, str], dict[str, Any]]] = []
    for dep in contract.dependencies:
        if dep.type == DYNAMIC:
            for spec in dep.dyn_ports:
                parsed = port_spec(spec)
                if parsed is not None:
                    port, proto = parsed
                    rule = {
                        "to": [{"ipBlock": {"cidr": dep.cidr}}],
                        "ports": [{"protocol": proto, "port": port}],
                    }
                    out.append(((dep.cidr, port, proto), rule))
            continue
        if dep.protocol in MODULE_PROTOCOLS or not dep.host:
            continue
        port_or_none = dep.effective_port
        if port_or_none is None:
            continue
        if dep.host.endswith(".svc.cluster.local"):
            namespace = dep.host.split(".")[1]
            peer: dict[str, Any] = {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            }
        else:
            peer = {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}
        out.append(((dep.host, port_or_none, "TCP"), {"to": [peer], "ports": _tcp(port_or_none)}))
    for extra in contract.additional_egress:
        to = [{"ipBlock": {"cidr": extra.cidr}}]
        if not extra.ports:
            out.append(((extra.cidr, 0, ""), {"to": to}))
        for spec in extra.ports:
            parsed = port_spec(spec)
            if parsed is not None:
                port, proto = parsed
                ports = [{"protocol": proto, "port": port}]
                out.append(((extra.cidr, port, proto), {"to": to, "ports": ports}))
    return sorted(out, key=lambda pair: pair[0])


def intended_hosts(contract: Contract) -> list[str]:
    """Outside hosts named by the egress rules, in rule order (the annotation)."""
    return [
        key[0]
        for key, _ in _egress_rules(contract)
        if key[1] != 53 and not key[0].endswith(".svc.cluster.local") and "/" not in key[0]
    ]


def network_policy(wf: Workflow, namespace: str, contract: Contract) -> dict[str, Any]:
    egress: list[dict[str, Any]] = [
        _dns_rule("UDP"),
        _dns_rule("TCP"),
        *(rule for _, rule in _egress_rules(contract)),
        {
            "to": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": PROXY_NAMESPACE}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "esm-sh"}},
                }
            ],
            "ports": _tcp(ENGINE_PORT),
        },
    ]
    if any(t.type == "webhook" for t in wf.triggers):
        callers: list[dict[str, Any]] = [
            {"podSelector": {}},
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-system"}}},
        ]
    else:
        callers = [{"podSelector": {"matchLabels": dict(TRIGGER_ROLE)}}]
    ingress = [
        {"from": callers, "ports": _tcp(ENGINE_PORT)},
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "tentacular-system"}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "tentacular-mcp"}},
                }
            ],
            "ports": _tcp(ENGINE_PORT),
        },
    ]
    meta: dict[str, Any] = {
        "name": network_policy_name(wf),
        "namespace": namespace,
        "labels": small_labels(wf),
    }
    hosts = intended_hosts(contract)
    if hosts:
        meta["annotations"] = {"tentacular.dev/intended-hosts": ",".join(hosts)}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": wf.name}},
            "policyTypes": ["Ingress", "Egress"],
            "egress": egress,
            "ingress": ingress,
        },
    }
