"""The Kubernetes objects that carry a workflow, built as plain data (never templated text).

Shapes follow seed 000 (code ConfigMap, code volume with `items`, no `args`)
and seed 002 (Deployment, Service, CronJobs, Secret). Every object carries
the recommended labels including `app.kubernetes.io/version` (seed 003's first
gap). Pure functions: same inputs, same dicts.
"""

from __future__ import annotations

import json
from typing import Any

from devloop.codefiles import key_to_path
from devloop.workflow import Trigger, Workflow

Manifest = dict[str, Any]

MANAGED_BY = "pipedreamer"
# In the Deployment's pod template: what its pods run (kube/plan.py reads it back).
CONTENT_HASH_ANNOTATION = "pdwatch/content-hash"
SECRET_VERSION_ANNOTATION = "pdwatch/secret-version"
# The code the pods mount: an immutable copy of `<wf>-code` named by its content, so a
# ReplicaSet always runs the code it was created with (a replaced pod of the previous
# rollout never loads newer, possibly broken, code; `kubectl rollout undo` brings the old
# code back). `<wf>-code` itself stays as the specification has it.
SNAPSHOT_LABEL = "pdwatch/code-snapshot"
ENGINE_PORT = 8080
CODE_MOUNT = "/app/workflow"
SECRETS_MOUNT = "/app/secrets"
CRON_IMAGE = "curlimages/curl:latest"


def labels(wf: Workflow) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": wf.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": wf.version,
    }


def ownership_selector(workflow_name: str) -> str:
    """The label selector of everything pdwatch deploys for a workflow."""
    return f"app.kubernetes.io/name={workflow_name},app.kubernetes.io/managed-by={MANAGED_BY}"


def owned_by_workflow(obj: dict[str, Any] | None, workflow_name: str) -> bool:
    """Whether a live object carries the workflow's labels: only those are pdwatch's to delete."""
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return (
        labels.get("app.kubernetes.io/name") == workflow_name
        and labels.get("app.kubernetes.io/managed-by") == MANAGED_BY
    )


def trigger_labels(wf: Workflow, cronjob_name: str) -> dict[str, str]:
    """The labels of a CronJob's Jobs and pods: part of the workflow, but without the
    `app.kubernetes.io/name` label every Service of pdwatch selects on. Named after the
    workflow, a running trigger pod (Ready: it has no probe) became one of its Service's
    endpoints, and its own POST to /run could be sent to itself; named after the CronJob,
    it matched the Service of a workflow that has the CronJob's name (`digest-cron-0`)."""
    return {
        "app.kubernetes.io/instance": cronjob_name,
        "app.kubernetes.io/part-of": wf.name,
        "app.kubernetes.io/component": "trigger",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": wf.version,
    }


def selector(wf: Workflow) -> dict[str, str]:
    """Only the name: the selector is immutable, so it must not carry the version."""
    return {"app.kubernetes.io/name": wf.name}


def metadata(wf: Workflow, name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(wf)}


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
    wf: Workflow, namespace: str, data: dict[str, str], content_hash: str
) -> Manifest:
    meta = metadata(wf, config_map_name(wf), namespace)
    meta["annotations"] = {CONTENT_HASH_ANNOTATION: content_hash}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": dict(data)}


def snapshot_name(wf: Workflow, content_hash: str) -> str:
    """`<wf>-code-<first 10 hex digits>`: never a revision's `<wf>-code-r<N>` (r is not hex)."""
    return f"{wf.name}-code-{content_hash[:10]}"


def snapshot_selector(workflow_name: str) -> str:
    return f"app.kubernetes.io/name={workflow_name},{SNAPSHOT_LABEL}=true"


def code_snapshot(
    wf: Workflow, namespace: str, data: dict[str, str], content_hash: str
) -> Manifest:
    meta = metadata(wf, snapshot_name(wf, content_hash), namespace)
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
) -> Manifest:
    pod_spec: dict[str, Any] = {}
    if runtime_class:
        pod_spec["runtimeClassName"] = runtime_class
    pod_spec["securityContext"] = POD_SECURITY
    pod_spec["containers"] = [
        {
            "name": "engine",
            "image": image,
            # Images side-loaded into kind/k0s must not be pulled again.
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": ENGINE_PORT, "protocol": "TCP"}],
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
    ]
    pod_spec["volumes"] = [
        {
            "name": "code",
            "configMap": {"name": config_map["metadata"]["name"], "items": code_items(config_map)},
        },
        {"name": "secrets", "secret": {"secretName": secret_name(wf), "optional": True}},
        {"name": "tmp", "emptyDir": {}},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(wf, wf.name, namespace),
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
                    "labels": labels(wf),
                    "annotations": {CONTENT_HASH_ANNOTATION: content_hash},
                },
                "spec": pod_spec,
            },
        },
    }


def service(wf: Workflow, namespace: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(wf, wf.name, namespace),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(wf),
            "ports": [
                {"name": "http", "port": ENGINE_PORT, "targetPort": ENGINE_PORT, "protocol": "TCP"}
            ],
        },
    }


def run_url(wf: Workflow, namespace: str) -> str:
    return f"http://{wf.name}.{namespace}.svc.cluster.local:{ENGINE_PORT}/run"


def cron_body(trigger: Trigger) -> str:
    return json.dumps({"trigger": trigger.name} if trigger.name else {}, separators=(",", ":"))


def cronjobs(wf: Workflow, namespace: str) -> list[Manifest]:
    out = []
    for name, trigger in zip(cronjob_names(wf), wf.cron_triggers, strict=True):
        out.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": metadata(wf, name, namespace),
                "spec": {
                    "schedule": trigger.schedule,
                    "concurrencyPolicy": "Forbid",
                    "successfulJobsHistoryLimit": 3,
                    "failedJobsHistoryLimit": 3,
                    "jobTemplate": {
                        "metadata": {"labels": trigger_labels(wf, name)},
                        "spec": {
                            "template": {
                                "metadata": {"labels": trigger_labels(wf, name)},
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


def secret(wf: Workflow, namespace: str, encoded: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(wf, secret_name(wf), namespace),
        "type": "Opaque",
        "data": dict(encoded),
    }


def redact(manifest: Manifest) -> Manifest:
    """A copy of a Secret with every value replaced: safe to print."""
    out = dict(manifest)
    out["data"] = {key: "<redacted>" for key in manifest.get("data", {})}
    return out
