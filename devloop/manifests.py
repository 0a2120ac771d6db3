"""The Kubernetes objects that carry a workflow, built as plain data (never templated text).

Shapes follow seed 000 (code ConfigMap, code volume with `items`, no `args`)
and seed 002 (Deployment, Service, CronJobs, Secret). Every object carries
the recommended labels including `app.kubernetes.io/version` (seed 003's first
gap). Pure functions: same inputs, same dicts.
"""

from __future__ import annotations

import json
from typing import Any

from devloop import tentacular
from devloop.codefiles import key_to_path
from devloop.contract import Contract
from devloop.wfformat import PIPEDREAMER, TENTACULAR
from devloop.workflow import Trigger, Workflow

Manifest = dict[str, Any]

MANAGED_BY = {PIPEDREAMER: "pipedreamer", TENTACULAR: tentacular.MANAGED_BY}
# In the Deployment's pod template: what its pods run (kube/plan.py reads it back).
CONTENT_HASH_ANNOTATION = "pdwatch/content-hash"
SECRET_VERSION_ANNOTATION = "pdwatch/secret-version"
# The code the pods mount: an immutable copy of `<wf>-code` named by its content, so a
# ReplicaSet always runs the code it was created with (a replaced pod of the previous
# rollout never loads newer, possibly broken, code; `kubectl rollout undo` brings the old
# code back). `<wf>-code` itself stays as the specification has it.
SNAPSHOT_LABEL = "pdwatch/code-snapshot"
ENGINE_PORT = tentacular.ENGINE_PORT  # both formats' engines (defined there: no cycle)
CODE_MOUNT = "/app/workflow"
SECRETS_MOUNT = "/app/secrets"
CRON_IMAGE = "curlimages/curl:latest"


def labels(wf: Workflow, fmt: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": wf.name,
        "app.kubernetes.io/managed-by": MANAGED_BY[fmt],
        "app.kubernetes.io/version": wf.version,
    }


def ownership_selector(workflow_name: str) -> str:
    """The label selector of everything pdwatch deploys for a workflow, in either format
    (a workflow whose format changed still has its earlier objects found)."""
    managers = ",".join(sorted(set(MANAGED_BY.values())))
    return f"app.kubernetes.io/name={workflow_name},app.kubernetes.io/managed-by in ({managers})"


def owned_by_workflow(obj: dict[str, Any] | None, workflow_name: str) -> bool:
    """Whether a live object carries the workflow's labels: only those are pdwatch's to delete."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/name") == workflow_name and labels.get(
        "app.kubernetes.io/managed-by"
    ) in tuple(MANAGED_BY.values())


def trigger_labels(wf: Workflow, cronjob_name: str, fmt: str) -> dict[str, str]:
    """The labels of a CronJob's Jobs and pods: part of the workflow, but without the
    `app.kubernetes.io/name` label every Service of pdwatch selects on. Named after the
    workflow, a running trigger pod (Ready: it has no probe) became one of its Service's
    endpoints, and its own POST to /run could be sent to itself; named after the CronJob,
    it matched the Service of a workflow that has the CronJob's name (`digest-cron-0`).
    In the Tentacular format they also carry `tentacular.dev/role: trigger`, the label its
    NetworkPolicy lets reach the engine."""
    out = {
        "app.kubernetes.io/instance": cronjob_name,
        "app.kubernetes.io/part-of": wf.name,
        "app.kubernetes.io/component": "trigger",
        "app.kubernetes.io/managed-by": MANAGED_BY[fmt],
        "app.kubernetes.io/version": wf.version,
    }
    if fmt == TENTACULAR:
        out.update(tentacular.TRIGGER_ROLE)
    return out


def selector(wf: Workflow) -> dict[str, str]:
    """Only the name: the selector is immutable, so it must not carry the version."""
    return {"app.kubernetes.io/name": wf.name}


def metadata(wf: Workflow, name: str, namespace: str, fmt: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(wf, fmt)}


def config_map_name(wf: Workflow) -> str:
    return f"{wf.name}-code"


def secret_name(wf: Workflow) -> str:
    return f"{wf.name}-secrets"


def cronjob_names(wf: Workflow) -> list[str]:
    crons = wf.cron_triggers
    if len(crons) == 1:
        return [f"{wf.name}-cron"]
    return [f"{wf.name}-cron-{i}" for i in range(len(crons))]


def code_config_map(
    wf: Workflow, namespace: str, data: dict[str, str], content_hash: str, fmt: str
) -> Manifest:
    meta = metadata(wf, config_map_name(wf), namespace, fmt)
    meta["annotations"] = {CONTENT_HASH_ANNOTATION: content_hash}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def snapshot_name(wf: Workflow, content_hash: str) -> str:
    """`<wf>-code-<first 10 hex digits>`: never a revision's `<wf>-code-r<N>` (r is not hex)."""
    return f"{wf.name}-code-{content_hash[:10]}"


def snapshot_labels(workflow_name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": workflow_name, SNAPSHOT_LABEL: "true"}


def code_snapshot(
    wf: Workflow, namespace: str, data: dict[str, str], content_hash: str, fmt: str
) -> Manifest:
    meta = metadata(wf, snapshot_name(wf, content_hash), namespace, fmt)
    meta["labels"][SNAPSHOT_LABEL] = "true"
    meta["annotations"] = {CONTENT_HASH_ANNOTATION: content_hash}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "immutable": True,
        "data": dict(data),
    }


def mounted_config_maps(template: Manifest) -> set[str]:
    """The ConfigMaps a pod template's volumes name."""
    volumes = ((template.get("spec") or {}).get("volumes")) or []
    return {str(v["configMap"]["name"]) for v in volumes if (v.get("configMap") or {}).get("name")}


def code_items(config_map: Manifest) -> list[dict[str, str]]:
    """The code volume's items, derived from the ConfigMap's own keys so both agree."""
    return [{"key": key, "path": key_to_path(key)} for key in sorted(config_map["data"])]


# The reference's pod and container security contexts (REFERENCE §4): code that needs root
# or writes outside /tmp must fail here as it would in the real deploy.
POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
# The reference's cron trigger container limits; the requests are what the API server would
# default them to (ResourceQuota namespaces refuse a pod that sets neither).
TRIGGER_RESOURCES = {
    "requests": {"memory": "32Mi", "cpu": "100m"},
    "limits": {"memory": "32Mi", "cpu": "100m"},
}


def deployment(
    wf: Workflow,
    namespace: str,
    image: str,
    runtime_class: str,
    config_map: Manifest,
    content_hash: str,
    fmt: str,
    contract: Contract | None = None,
) -> Manifest:
    """The engine's Deployment as the format's reference writes it, with pdwatch's
    dev-loop additions (README, "Formats"): RollingUpdate so the old pod serves until the
    new one is Ready, a 1 s readiness probe, the content-hash annotation, the code mounted
    from its immutable snapshot, IfNotPresent for side-loaded images. `contract`: the
    Tentacular format's, with the modules scanned from the code."""
    tentacular_format = fmt == TENTACULAR
    pod_spec: dict[str, Any] = {}
    if tentacular_format:
        pod_spec["automountServiceAccountToken"] = False
    if runtime_class:
        pod_spec["runtimeClassName"] = runtime_class
    pod_spec["securityContext"] = POD_SECURITY
    port = {"containerPort": ENGINE_PORT, "protocol": "TCP"}  # no name, as both references
    container: dict[str, Any] = {"name": "engine", "image": image}
    command = tentacular.deno_command(contract) if tentacular_format else None
    if command is not None:
        container["command"], container["args"] = command
    container |= {
        # Images side-loaded into kind/k0s must not be pulled again.
        "imagePullPolicy": "IfNotPresent",
        "ports": [port],
        # The reference's liveness probe: a hung engine is restarted.
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": ENGINE_PORT},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
        },
        # Faster than the reference's (3 s delay, every 5 s): Ready sooner after a save.
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": ENGINE_PORT},
            "periodSeconds": 1,
            "timeoutSeconds": 1,
            "failureThreshold": 3,
        },
        "resources": {
            "requests": {"memory": "64Mi", "cpu": "100m"},
            "limits": {"memory": "256Mi", "cpu": "500m"},
        },
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "code", "mountPath": CODE_MOUNT, "readOnly": True},
            {"name": "secrets", "mountPath": SECRETS_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    tmp: dict[str, Any] = {}
    pod_spec["containers"] = [container]
    pod_spec["volumes"] = [
        {
            "name": "code",
            "configMap": {"name": config_map["metadata"]["name"], "items": code_items(config_map)},
        },
        {"name": "secrets", "secret": {"secretName": secret_name(wf), "optional": True}},
        {"name": "tmp", "emptyDir": tmp},
    ]
    meta = metadata(wf, wf.name, namespace, fmt)
    if tentacular_format:
        container["env"] = [{"name": "DENO_DIR", "value": tentacular.DENO_DIR}]
        container["volumeMounts"].append(
            {
                "name": "import-map",
                "mountPath": tentacular.IMPORT_MAP_MOUNT,
                "subPath": "deno.json",
                "readOnly": True,
            }
        )
        tmp["sizeLimit"] = tentacular.TMP_LIMIT
        pod_spec["volumes"].append(
            {
                "name": "import-map",
                "configMap": {"name": tentacular.import_map_name(wf), "optional": True},
            }
        )
        if notes := tentacular.metadata_annotations(wf, cron=True):
            meta["annotations"] = notes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(wf)},
            # New pod first, old pod removed once the new one is Ready.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": labels(wf, fmt),
                    "annotations": {CONTENT_HASH_ANNOTATION: content_hash},
                },
                "spec": pod_spec,
            },
        },
    }


def service(wf: Workflow, namespace: str, fmt: str) -> Manifest:
    port = {"port": ENGINE_PORT, "targetPort": ENGINE_PORT, "protocol": "TCP"}
    meta = metadata(wf, wf.name, namespace, fmt)
    if fmt == TENTACULAR and (notes := tentacular.metadata_annotations(wf, cron=False)):
        meta["annotations"] = notes
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": selector(wf), "ports": [port]},
    }


def run_url(wf: Workflow, namespace: str) -> str:
    return f"http://{wf.name}.{namespace}.svc.cluster.local:{ENGINE_PORT}/run"


def cron_body(trigger: Trigger) -> str:
    return json.dumps({"trigger": trigger.name} if trigger.name else {}, separators=(",", ":"))


def cronjobs(wf: Workflow, namespace: str, fmt: str) -> list[Manifest]:
    out = []
    for name, trigger in zip(cronjob_names(wf), wf.cron_triggers, strict=True):
        out.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": metadata(wf, name, namespace, fmt),
                "spec": {
                    "schedule": trigger.schedule,
                    "concurrencyPolicy": "Forbid",
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {
                        "metadata": {"labels": trigger_labels(wf, name, fmt)},
                        "spec": {
                            "template": {
                                "metadata": {"labels": trigger_labels(wf, name, fmt)},
                                "spec": {
                                    "restartPolicy": "Never",
                                    # As the engine's pod: admitted where Pod Security
                                    # "restricted" is enforced (the reference set none).
                                    "securityContext": POD_SECURITY,
                                    "containers": [
                                        {
                                            "name": "trigger",
                                            "image": CRON_IMAGE,
                                            "resources": TRIGGER_RESOURCES,
                                            "securityContext": CONTAINER_SECURITY,
                                            "command": [
                                                "curl",
                                                "-sS",
                                                "--fail",
                                                "-X",
                                                "POST",
                                                "-H",
                                                "Content-Type: application/json",
                                                "-d",
                                                cron_body(trigger),
                                                run_url(wf, namespace),
                                            ],
                                        }
                                    ],
                                },
                            }
                        },
                    },
                },
            }
        )
    return out


def secret(wf: Workflow, namespace: str, encoded: dict[str, str], fmt: str) -> Manifest:
    """Labelled in both formats (the Tentacular reference's has none): pdwatch deletes and
    replaces only what carries its labels."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(wf, secret_name(wf), namespace, fmt),
        "type": "Opaque",
        "data": dict(encoded),
    }


def redact(manifest: Manifest) -> Manifest:
    """A copy of a Secret with every value replaced: safe to print."""
    out = dict(manifest)
    out["data"] = {key: "<redacted>" for key in manifest.get("data", {})}
    return out
