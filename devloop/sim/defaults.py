"""Defaults the API server fills in, as a real one does on every write.

They matter to clients: a live Deployment never equals the manifest that was applied
(restartPolicy, dnsPolicy, terminationMessagePath, protocol …), so a client must not
decide "did my apply change the pod template?" by comparing the two; generation does.
"""

from __future__ import annotations

import random
from typing import Any


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if kind in ("Deployment", "ReplicaSet"):
        spec.setdefault("replicas", 1)
        if kind == "Deployment":
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxSurge", "25%")
                rolling.setdefault("maxUnavailable", "25%")
        pod_template(spec.get("template"))
    elif kind == "Pod":
        pod_spec(spec)
    elif kind == "Service":
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName" and "clusterIP" not in spec:
            spec["clusterIP"] = f"10.96.{random.randint(1, 254)}.{random.randint(1, 254)}"
        if spec.get("clusterIP"):
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "Job":
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        uid = obj.get("metadata", {}).get("uid", "")
        if uid and "selector" not in spec and not spec.get("manualSelector"):
            # the Job controller's own labels (batch/v1 defaulting of an auto-selector)
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            template = spec.setdefault("template", {})
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            name = obj["metadata"].get("name", "")
            for prefix in ("batch.kubernetes.io/", ""):
                labels.setdefault(f"{prefix}controller-uid", uid)
                labels.setdefault(f"{prefix}job-name", name)
        pod_template(spec.get("template"))
    elif kind == "CronJob":
        spec.setdefault("suspend", False)
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        job = (spec.get("jobTemplate") or {}).get("spec")
        if isinstance(job, dict):
            pod_template(job.get("template"))


def pod_template(template: Any) -> None:
    if isinstance(template, dict):
        template.setdefault("metadata", {}).setdefault("creationTimestamp", None)
        if isinstance(template.get("spec"), dict):
            pod_spec(template["spec"])


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for volume in spec.get("volumes") or []:
        for source in ("configMap", "secret"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
    for container in spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = str(container.get("image", ""))
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else "latest"
        container.setdefault("imagePullPolicy", "Always" if tag == "latest" else "IfNotPresent")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
        probe = container.get("readinessProbe")
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            if isinstance(probe.get("httpGet"), dict):
                probe["httpGet"].setdefault("scheme", "HTTP")
