"""A simulated node: scheduler, kubelet and container runtime for the pods of the
embedded cluster, with the states, events and log semantics of the real ones. The engine
image runs for real: the stand-in engine under Deno on a loopback address of its own,
probed over HTTP (devloop.node.denoengine, devloop.node.prober); the simulated engine
(devloop.sim.engine) only where settings say "simulated".

Pods go Pending (PodScheduled) → ContainerCreating (volumes mounted; a missing
ConfigMap, Secret or item key keeps them there with a `FailedMount` event worded as the
kubelet words it) → image present or pulled (unknown images: ErrImagePull, then
ImagePullBackOff) → Running, then Ready once the engine answers its readiness probe. An
engine that exits is restarted with back-off (CrashLoopBackOff, restartCount,
lastState.terminated). Deleted pods are stopped (Killing) and then removed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiMapping

from devloop.node.denoengine import DenoEngine, engine_flavor, find_deno
from devloop.node.logs import ContainerLog, LogLine
from devloop.node.permissions import container_flags, engine_config_mount
from devloop.node.podnet import PodNetwork
from devloop.node.prober import next_relist, probe_container
from devloop.sim import resources
from devloop.sim.admission import quantity
from devloop.sim.api import Api
from devloop.sim.clone import clone
from devloop.sim.engine import Engine, Exit
from devloop.sim.errors import ApiError, bad_request, not_found
from devloop.sim.faults import Faults, cut, start_stream
from devloop.sim.params import query_bool
from devloop.sim.settings import ImageBehaviour, SimSettings
from devloop.sim.store import Store, WatchEvent, now_rfc3339

PODS = resources.of_kind("v1", "Pod")
# Not sent on by the service proxy: what its authentication filter removed (filters.
# WithAuthentication drops Authorization), hop-by-hop headers (net/http/httputil), and
# what the client library sets for its own connection.
NOT_FORWARDED = frozenset(
    {
        "authorization",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",
    }
)
CONFIGMAPS = resources.of_kind("v1", "ConfigMap")
SECRETS = resources.of_kind("v1", "Secret")
SERVICES = resources.of_kind("v1", "Service")
NODES = resources.of_kind("v1", "Node")
# the scheduler's back-off for an unschedulable pod (podInitialBackoffSeconds 1 s,
# podMaxBackoffSeconds 10 s: pkg/scheduler/apis/config/v1 defaults)
SCHEDULE_BACKOFF = 1.0
SCHEDULE_BACKOFF_MAX = 10.0
NODE_NAME = "pdwatch-embedded"
# The first log line of an engine simulated because Deno cannot run here
NO_DENO = (
    "pdwatch: no Deno on this machine (pip install deno): this engine is simulated, and "
    "the nodes' code does not run"
)
CODE_MOUNT = "/app/workflow"


@dataclass(frozen=True)
class Booted:
    """How an engine's start ended: serving (exit None), dead at start (exit), stopped by
    its liveness probe while it loaded (killed), or its pod deleted meanwhile (deleted)."""

    exit: Exit | None = None
    killed: bool = False
    deleted: bool = False


@dataclass
class PodRuntime:
    namespace: str
    name: str
    uid: str
    runs: list[ContainerLog] = field(default_factory=list)
    engine: Engine | None = None  # the simulated engine, serving
    process: DenoEngine | None = None  # the engine as a Deno process, running
    address: str = ""  # where its engine listens
    port: int = 8080
    waiting_reason: str = "ContainerCreating"
    deleting: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


# distribution/reference's grammar (reference/regexp.go): [domain/]path[:tag][@digest],
# path components lowercase alphanumerics joined by one of . _ __ or dashes
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
REFERENCE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def valid_reference(image: str) -> bool:
    return bool(REFERENCE_RE.match(image))


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """k8s.io/api/core/v1 toleration.go ToleratesTaint."""
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        if t.get("operator") == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def requests(pod: dict[str, Any], name: str) -> Decimal:
    """A pod's request of a resource: the sum over its containers (resource_helpers)."""
    return sum(
        (
            quantity(((c.get("resources") or {}).get("requests") or {}).get(name, "0"))
            for c in (pod.get("spec") or {}).get("containers") or []
        ),
        Decimal(0),
    )


def runtime_images(settings: SimSettings) -> dict[str, ImageBehaviour]:
    """The images the node has (pulled, or loaded as kind/k0s users side-load them)."""
    return settings.images


def pullable(image: str, settings: SimSettings) -> bool:
    """Docker Hub has the images this cluster knows (settings.images: the engine, curl, and
    what a test names), and no other: a typo such as `pipedreamer-engne` fails as it fails on
    a kind node. Another registry (the user's own) has any image, except one whose host
    cannot exist (the reserved .invalid top-level domain, RFC 2606) or one a test marked
    unpullable."""
    host = image_reference(image).split("/", 1)[0]
    if image in settings.unpullable or host.endswith(".invalid"):
        return False
    return host != "docker.io" or image in settings.images


def image_reference(image: str) -> str:
    """How containerd names an image in its errors: docker.io/library/x:latest."""
    name = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


class Kubelet:
    def __init__(self, api: Api, store: Store, settings: SimSettings, faults: Faults) -> None:
        self.api, self.store, self.settings, self.faults = api, store, settings, faults
        self.started = time.monotonic()  # the relists tick from here (prober.until_relist)
        self.pods: dict[str, PodRuntime] = {}
        self.next_ip = 10
        self.deno = find_deno() if settings.engine == "deno" else None
        # Real engines listen on loopback addresses of this cluster's own
        self.network = PodNetwork.loopback()
        self._session: aiohttp.ClientSession | None = None
        store.listeners.append(self.on_event)
        api.on_pod_delete = self.on_pod_delete

    # --- lifecycle --------------------------------------------------------------------------

    def on_event(self, event: WatchEvent) -> None:
        if event.resource is not PODS or event.type != "ADDED":
            return
        meta = event.object["metadata"]
        runtime = PodRuntime(meta["namespace"], meta["name"], meta["uid"])
        self.pods[meta["uid"]] = runtime
        runtime.task = asyncio.get_running_loop().create_task(self.run_pod(runtime))

    def on_pod_delete(self, pod: dict[str, Any]) -> bool:
        runtime = self.pods.get(pod["metadata"]["uid"])
        if runtime is None or runtime.task is None or runtime.task.done():
            return False
        runtime.deleting.set()
        return True

    async def stop(self) -> None:
        tasks = [runtime.task for runtime in self.pods.values() if runtime.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runtime in self.pods.values():
            if runtime.process is not None:
                await runtime.process.stop(0)  # the cluster is going: no grace
                runtime.process = None
            for run in runtime.runs:
                run.close()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """One client for probes and for the Service proxy's calls to the engines."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        return self._session

    async def pause(self, runtime: PodRuntime, seconds: float) -> bool:
        """Sleep; True when the pod is being deleted meanwhile."""
        if runtime.deleting.is_set():
            return True
        try:
            await asyncio.wait_for(runtime.deleting.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def unschedulable(self, pod: dict[str, Any]) -> str | None:
        """Why the scheduler cannot place the pod on the cluster's one node, as its FitError
        says it (pkg/scheduler/framework/types.go FitError.Error: `0/N nodes are
        available: …`, then the preemption's own verdict), or None. Filters: NodeUnschedulable,
        TaintToleration (NoSchedule/NoExecute taints, helpers.TolerationsTolerateTaint),
        NodeResourcesFit (requests of the pods bound to the node against allocatable)."""
        node = self.store.find(NODES, "", NODE_NAME)
        if node is None:
            return "no nodes available to schedule pods"  # schedule_one.go ErrNoNodesAvailable
        spec, tolerations = node.get("spec") or {}, (pod.get("spec") or {}).get("tolerations")
        reasons: list[str] = []
        helpful = False
        if spec.get("unschedulable") and not tolerates(
            tolerations or [],
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        ):
            reasons.append("node(s) were unschedulable")
        for taint in spec.get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
                tolerations or [], taint
            ):
                reasons.append(
                    f"node(s) had untolerated taint {{{taint.get('key', '')}: "
                    f"{taint.get('value', '')}}}"
                )
                break
        if not reasons:
            allocatable = (node.get("status") or {}).get("allocatable") or {}
            bound = self.store.view(
                PODS,
                "",
                lambda p: (
                    (p.get("spec") or {}).get("nodeName") == NODE_NAME
                    and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                    and p["metadata"]["uid"] != pod["metadata"]["uid"]
                ),
            )
            for name in ("cpu", "memory"):
                if name not in allocatable:
                    continue
                used = sum(requests(p, name) for p in bound) + requests(pod, name)
                if used > quantity(allocatable[name]):
                    reasons.append(f"Insufficient {name}")
                    helpful = True
        if not reasons:
            return None
        preemption = (
            "No preemption victims found for incoming pod"
            if helpful
            else "Preemption is not helpful for scheduling"
        )
        listed = ", ".join(f"1 {r}" for r in sorted(reasons))
        return (
            f"0/1 nodes are available: {listed}. preemption: 0/1 nodes are available: "
            f"1 {preemption}."
        )

    def pod(self, runtime: PodRuntime) -> dict[str, Any] | None:
        pod = self.store.find(PODS, runtime.namespace, runtime.name)
        if pod is None or pod["metadata"]["uid"] != runtime.uid:
            return None
        return pod

    def write_status(
        self, runtime: PodRuntime, status: dict[str, Any], node_name: str | None = None
    ) -> dict[str, Any] | None:
        pod = self.pod(runtime)
        if pod is None:
            return None
        if node_name:  # binding: the scheduler sets spec.nodeName through pods/binding
            pod["spec"]["nodeName"] = node_name
            pod = self.api.update(PODS, runtime.namespace, runtime.name, pod, "kube-scheduler")
        pod["status"] = status
        return self.api.update(PODS, runtime.namespace, runtime.name, pod, "kubelet", "status")

    def event(
        self,
        runtime: PodRuntime,
        reason: str,
        message: str,
        type_: str = "Normal",
        component: str = "kubelet",
        container: bool = True,
    ) -> None:
        pod = self.pod(runtime)
        if pod is not None:
            field_path = f"spec.containers{{{self.container_name(pod)}}}" if container else ""
            self.api.record_event(pod, reason, message, type_, component, field_path)

    @staticmethod
    def container_name(pod: dict[str, Any]) -> str:
        return str(pod["spec"]["containers"][0]["name"])

    async def run_pod(self, runtime: PodRuntime) -> None:
        try:
            await self._run_pod(runtime)
        except asyncio.CancelledError:
            raise
        except ApiError:
            pass  # the pod went away under us
        finally:
            if runtime.process is not None:
                runtime.process.kill()  # reaped by stop()
            for run in runtime.runs:
                run.close()
            if runtime.address:
                self.network.release(runtime.address)
                runtime.address = ""

    async def _run_pod(self, runtime: PodRuntime) -> None:
        s = self.settings
        if await self.pause(runtime, s.schedule_delay):
            return await self.finish(runtime, started=False)
        backoff = SCHEDULE_BACKOFF
        while True:
            pod = self.pod(runtime)
            if pod is None:
                return
            unschedulable = self.unschedulable(pod)
            if unschedulable is None:
                break
            pod["status"] = {
                "phase": "Pending",
                "qosClass": pod["status"].get("qosClass", "BestEffort"),
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": unschedulable,
                        "lastTransitionTime": now_rfc3339(),
                    }
                ],
            }
            self.api.update(PODS, runtime.namespace, runtime.name, pod, "kube-scheduler", "status")
            self.event(
                runtime,
                "FailedScheduling",
                unschedulable,
                "Warning",
                component="default-scheduler",
                container=False,
            )
            if await self.pause(runtime, s.scaled(backoff)):
                return await self.finish(runtime, started=False)
            backoff = min(backoff * 2, SCHEDULE_BACKOFF_MAX)
        container = pod["spec"]["containers"][0]
        cname, image = container["name"], container.get("image", "")
        now = now_rfc3339()
        status: dict[str, Any] = {
            "phase": "Pending",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "False", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{cname}]",
                    "lastTransitionTime": now,
                },
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": f"containers with unready status: [{cname}]",
                    "lastTransitionTime": now,
                },
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "hostIP": "172.18.0.2",
            "hostIPs": [{"ip": "172.18.0.2"}],
            "startTime": now,
            "qosClass": pod["status"].get("qosClass", "BestEffort"),
            "containerStatuses": [
                self.container_status(cname, image, 0, {"waiting": {"reason": "ContainerCreating"}})
            ],
        }
        self.write_status(runtime, status, node_name=NODE_NAME)
        self.event(
            runtime,
            "Scheduled",
            f"Successfully assigned {runtime.namespace}/{runtime.name} to {NODE_NAME}",
            component="default-scheduler",
            container=False,
        )
        # volumes
        retry = s.mount_retry
        while True:
            pod = self.pod(runtime)
            if pod is None:
                return
            problem = self.mount_problem(pod)
            if problem is None:
                break
            self.event(runtime, "FailedMount", problem, "Warning", container=False)
            if await self.pause(runtime, s.scaled(retry)):
                return await self.finish(runtime, started=False)
            retry = min(retry * 2, s.mount_retry_max)
        if await self.pause(runtime, s.mount_delay):
            return await self.finish(runtime, started=False)
        files = self.projected_files(pod)
        synced_at = time.monotonic()
        set_condition(status, "PodReadyToStartContainers", "True")
        # image
        if not await self.pull(runtime, status, cname, image, container):
            return await self.finish(runtime, started=False)
        behaviour = s.images.get(image)
        if behaviour is not None and behaviour.program == "curl":
            return await self.run_to_completion(runtime, status, cname, image, container)
        # run, restarting as the pod's restartPolicy says (kubelet doBackOff: the first
        # restart at once; from the second on, CrashLoopBackOff for 10 s, doubling to 5 min)
        policy = pod["spec"].get("restartPolicy", "Always")
        backoff = 0.0
        restarts = 0
        last_state: dict[str, Any] = {}
        while True:
            run = ContainerLog()
            runtime.runs.append(run)
            started_at = now_rfc3339()
            began = time.monotonic()
            self.event(runtime, "Created", f"Created container: {cname}")
            self.event(runtime, "Started", f"Started container {cname}")
            running = {"running": {"startedAt": started_at}}
            status["phase"] = "Running"
            status["podIP"] = status.get("podIP") or self.allocate_ip(runtime)
            status["podIPs"] = [{"ip": status["podIP"]}]
            status["containerStatuses"] = [
                self.container_status(cname, image, restarts, running, last_state, started=True)
            ]
            self.write_status(runtime, status)
            if self.deno is not None and (behaviour is None or behaviour == ImageBehaviour()):
                outcome = await self.run_process(
                    runtime, run, files, container, status, restarts, running, last_state
                )
                if outcome is None:
                    return await self.finish(runtime, started=True)
                exit_: Exit | None = outcome
                for name in ("Ready", "ContainersReady"):
                    set_condition(status, name, "False")
            elif behaviour is not None and behaviour.exit_code is not None:
                exit_ = Exit(behaviour.exit_code)
            else:
                if self.settings.engine == "deno" and behaviour in (None, ImageBehaviour()):
                    run.append(NO_DENO)
                engine = Engine(files, run.append)
                booted = await self.boot(runtime, engine, cname, container, status)
                if booted.deleted:
                    return await self.finish(runtime, started=True)
                # stopped by the kubelet with SIGTERM; the engine has no handler: 128+15
                exit_ = Exit(143) if booted.killed else booted.exit
            # a container over its memory limit is killed by the kernel's OOM killer with
            # SIGKILL (exit code 128+9); the container runtime, told by the cgroup's OOM
            # event, reports the reason OOMKilled (ContainerStateTerminated.Reason)
            oom = exit_ is None and behaviour is not None and behaviour.oom_killed
            if oom:
                exit_ = Exit(137)
            if exit_ is None:
                runtime.engine = engine
                killed = await self.serve(
                    runtime, status, cname, image, restarts, running, last_state, container
                )
                if not killed:
                    return await self.finish(runtime, started=True)
                runtime.engine = None
                # the kubelet stops it with SIGTERM; the engine has no handler: 128+15
                exit_ = Exit(143)
                for name in ("Ready", "ContainersReady"):
                    set_condition(status, name, "False")
            run.close()
            terminated = {
                "terminated": {
                    "exitCode": exit_.code,
                    "reason": "OOMKilled" if oom else ("Error" if exit_.code else "Completed"),
                    "startedAt": started_at,
                    "finishedAt": now_rfc3339(),
                    "containerID": f"containerd://{runtime.uid[:12]}",
                }
            }
            last_state = terminated
            status["containerStatuses"] = [
                self.container_status(cname, image, restarts, terminated, last_state)
            ]
            if policy == "Never" or (policy == "OnFailure" and exit_.code == 0):
                status["phase"] = "Failed" if exit_.code else "Succeeded"
                self.write_status(runtime, status)
                await runtime.deleting.wait()
                return await self.finish(runtime, started=False)
            self.write_status(runtime, status)
            if time.monotonic() - began >= s.scaled(s.crash_backoff_reset):
                backoff = 0.0  # it ran long enough: the back-off starts over
            if backoff:
                wait_text = (
                    f"back-off {backoff:g}s restarting failed container={cname} "
                    f"pod={runtime.name}_{runtime.namespace}({runtime.uid})"
                )
                self.event(
                    runtime,
                    "BackOff",
                    f"Back-off restarting failed container {cname} in "
                    f"pod {runtime.name}_{runtime.namespace}"
                    f"({runtime.uid})",
                    "Warning",
                )
                runtime.waiting_reason = "CrashLoopBackOff"
                status["containerStatuses"] = [
                    self.container_status(
                        cname,
                        image,
                        restarts,
                        {"waiting": {"reason": "CrashLoopBackOff", "message": wait_text}},
                        last_state,
                    )
                ]
                self.write_status(runtime, status)
                if await self.pause(runtime, s.scaled(backoff)):
                    return await self.finish(runtime, started=False)
            backoff = min(backoff * 2, s.crash_backoff_max) if backoff else s.crash_backoff
            restarts += 1
            if time.monotonic() - synced_at >= s.scaled(s.configmap_sync):
                current = self.pod(runtime)
                if current is not None:  # the volume now holds the objects' current data
                    files, synced_at = self.projected_files(current), time.monotonic()

    def pull_secret(self, runtime: PodRuntime, host: str) -> bool:
        """Whether the pod names an existing docker-registry Secret with credentials for
        the host (the kubelet reads imagePullSecrets; credentialprovider keyring)."""
        pod = self.pod(runtime) or {}
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            secret = self.store.find(SECRETS, runtime.namespace, ref.get("name", ""))
            data = (secret or {}).get("data") or {}
            encoded = data.get(".dockerconfigjson", "")
            try:
                config = json.loads(base64.b64decode(encoded or "e30="))
            except ValueError:
                continue
            if host in (config.get("auths") or {}):
                return True
        return False

    async def pull(
        self,
        runtime: PodRuntime,
        status: dict[str, Any],
        cname: str,
        image: str,
        container: dict[str, Any],
    ) -> bool:
        s = self.settings
        if not valid_reference(image):
            # kuberuntime_image.go applyDefaultImageTag: the name is parsed before any
            # pull; the container waits with InvalidImageName and is never retried
            why = (
                f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                f'"{image}": invalid reference format'
            )
            self.event(runtime, "InspectFailed", why, "Warning")
            self.event(runtime, "Failed", "Error: InvalidImageName", "Warning")
            runtime.waiting_reason = "InvalidImageName"
            status["containerStatuses"] = [
                self.container_status(
                    cname, image, 0, {"waiting": {"reason": "InvalidImageName", "message": why}}
                )
            ]
            self.write_status(runtime, status)
            await runtime.deleting.wait()
            return False
        policy = container.get("imagePullPolicy", "IfNotPresent")
        if image in runtime_images(s) and policy != "Always":
            self.event(runtime, "Pulled", f'Container image "{image}" already present on machine')
            return True
        backoff = s.pull_backoff
        while True:
            self.event(runtime, "Pulling", f'Pulling image "{image}"')
            started = time.monotonic()
            if await self.pause(runtime, s.pull_delay):
                return False
            ref = image_reference(image)
            host = ref.split("/", 1)[0]
            denied = host in s.private_registries and not self.pull_secret(runtime, host)
            # Docker Hub answers a repository it does not have as it answers a private one
            denied = denied or (host == "docker.io" and not pullable(image, s))
            failing = host in s.failing_registries
            if pullable(image, s) and not denied and not failing:
                ms = int((time.monotonic() - started) * 1000)
                self.event(
                    runtime,
                    "Pulled",
                    f'Successfully pulled image "{image}" in {ms}ms '
                    f"({ms}ms including waiting). Image size: "
                    "52428800 bytes.",
                )
                s.images.setdefault(image, ImageBehaviour())  # now present on the node
                return True
            if failing:
                # containerd's words for a registry that answers with a server error
                repository = ref.split("/", 1)[1].rsplit(":", 1)[0]
                reason = (
                    f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
                    f'failed to resolve reference "{ref}": unexpected status from HEAD request '
                    f"to https://{host}/v2/{repository}/manifests/latest: 500 Internal Server "
                    "Error"
                )
            elif denied:
                # containerd's words for a registry that refuses an anonymous pull
                reason = (
                    f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
                    f'failed to resolve reference "{ref}": pull access denied, repository does '
                    "not exist or may require authorization: server message: "
                    "insufficient_scope: authorization failed"
                )
            elif host.endswith(".invalid"):
                reason = (
                    f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
                    f'failed to resolve reference "{ref}": failed to do request: Head '
                    f'"https://{host}/v2/": dial tcp: lookup {host}: no such host'
                )
            else:
                reason = (
                    f"rpc error: code = NotFound desc = failed to pull and unpack image "
                    f'"{ref}": failed to resolve reference "{ref}": {ref}: not found'
                )
            self.event(runtime, "Failed", f'Failed to pull image "{image}": {reason}', "Warning")
            self.event(runtime, "Failed", "Error: ErrImagePull", "Warning")
            runtime.waiting_reason = "ErrImagePull"
            status["containerStatuses"] = [
                self.container_status(
                    cname, image, 0, {"waiting": {"reason": "ErrImagePull", "message": reason}}
                )
            ]
            self.write_status(runtime, status)
            if await self.pause(runtime, s.scaled(backoff) / 2):
                return False
            self.event(runtime, "BackOff", f'Back-off pulling image "{image}"')
            self.event(runtime, "Failed", "Error: ImagePullBackOff", "Warning")
            runtime.waiting_reason = "ImagePullBackOff"
            status["containerStatuses"] = [
                self.container_status(
                    cname,
                    image,
                    0,
                    {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                )
            ]
            self.write_status(runtime, status)
            if await self.pause(runtime, s.scaled(backoff)):
                return False
            backoff = min(backoff * 2, s.pull_backoff_max)

    async def serve(
        self,
        runtime: PodRuntime,
        status: dict[str, Any],
        cname: str,
        image: str,
        restarts: int,
        running: dict[str, Any],
        last_state: dict[str, Any],
        container: dict[str, Any],
    ) -> bool:
        """The engine is up: pass or fail its probes until the pod is deleted (False) or
        the liveness probe has failed `failureThreshold` times in a row and the container
        is killed to be restarted (True)."""
        s = self.settings
        if await self.pause(runtime, s.start_delay):
            return False
        behaviour = s.images.get(image)
        if behaviour is None or behaviour.ready:
            for name in ("Ready", "ContainersReady"):
                set_condition(status, name, "True")
            status["containerStatuses"] = [
                self.container_status(
                    cname, image, restarts, running, last_state, started=True, ready=True
                )
            ]
            self.write_status(runtime, status)
            await runtime.deleting.wait()
            return False
        # an engine that answers /health with 503
        return await self.fail_probes(runtime, cname, container, status.get("podIP", ""), False)

    async def run_process(
        self,
        runtime: PodRuntime,
        run: ContainerLog,
        files: dict[str, str],
        container: dict[str, Any],
        status: dict[str, Any],
        restarts: int,
        running: dict[str, Any],
        last_state: dict[str, Any],
    ) -> Exit | None:
        """The engine as a Deno process on the pod's address, probed as the kubelet probes
        it (on the pod's schedule, scaled as this cluster's clocks are). Its Exit: it died,
        or it was stopped after its liveness probe failed; None: the pod is being deleted
        (the process still runs: `finish` stops it, as the kubelet does after Killing)."""
        assert self.deno is not None
        cname, image = container["name"], container.get("image", "")
        pod = self.pod(runtime)
        runtime.port = next(
            (int(p["containerPort"]) for p in container.get("ports") or [] if "containerPort" in p),
            8080,
        )
        secrets = self.mounted_secrets(pod) if pod is not None else {}
        engine = DenoEngine(
            files,
            secrets,
            run,
            self.network,
            runtime.address,
            runtime.port,
            self.deno,
            container_flags(container),
            self.mounted_config(pod) if pod is not None else None,
            engine_flavor(image),
        )
        runtime.process = engine
        await engine.start()

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(self.settings.scaled(seconds))

        async def set_ready(ready: bool) -> None:
            value = "True" if ready else "False"
            for name in ("Ready", "ContainersReady"):
                set_condition(status, name, value)
            status["containerStatuses"] = [
                self.container_status(
                    cname, image, restarts, running, last_state, started=True, ready=ready
                )
            ]
            self.write_status(runtime, status)

        async def event(type_: str, reason: str, message: str) -> None:
            self.event(runtime, reason, message, type_)

        exited = asyncio.ensure_future(engine.exited())
        probing = asyncio.ensure_future(
            probe_container(
                container,
                runtime.address,
                self.session,
                noticed=next_relist(self.started, self.settings.time_scale),
                sleep=sleep,
                set_ready=set_ready,
                event=event,
            )
        )
        deleted = asyncio.ensure_future(runtime.deleting.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, probing, deleted}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (probing, deleted):
                task.cancel()
        if exited in done:
            runtime.process = None
            await engine.stop(0)
            return exited.result()
        exited.cancel()
        if deleted in done:
            return None
        # killed after its liveness probe failed: SIGTERM, then SIGKILL after the grace
        stopped = await engine.stop(self.grace(pod))
        runtime.process = None
        return stopped or Exit(143)

    def grace(self, pod: dict[str, Any] | None) -> float:
        """The pod's terminationGracePeriodSeconds, on this cluster's clock."""
        seconds = ((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        return self.settings.scaled(float(seconds))

    def mounted_config(self, pod: dict[str, Any]) -> str | None:
        """The deno.json mounted for the engine (permissions.engine_config_mount)."""
        mount = engine_config_mount(pod["spec"]["containers"][0])
        if mount is None:
            return None
        for volume in pod["spec"].get("volumes") or []:
            source = volume.get("configMap")
            if volume.get("name") != mount["name"] or source is None:
                continue
            cm = self.store.find(CONFIGMAPS, pod["metadata"]["namespace"], source.get("name", ""))
            value = ((cm or {}).get("data") or {}).get(mount.get("subPath", ""))
            return value if isinstance(value, str) else None
        return None

    def mounted_secrets(self, pod: dict[str, Any]) -> dict[str, bytes]:
        """The Secret the engine reads at /app/secrets: key → value."""
        container = pod["spec"]["containers"][0]
        volume_name = next(
            (
                m["name"]
                for m in container.get("volumeMounts") or []
                if m.get("mountPath", "").rstrip("/") == "/app/secrets"
            ),
            None,
        )
        for volume in pod["spec"].get("volumes") or []:
            source = volume.get("secret")
            if volume.get("name") != volume_name or source is None:
                continue
            secret = self.store.find(
                SECRETS, pod["metadata"]["namespace"], source.get("secretName", "")
            )
            data = (secret or {}).get("data") or {}
            return {k: base64.b64decode(v) for k, v in data.items()}
        return {}

    async def boot(
        self,
        runtime: PodRuntime,
        engine: Engine,
        cname: str,
        container: dict[str, Any],
        status: dict[str, Any],
    ) -> Booted:
        """The engine's start, its top-level timers waited out; it does not listen while it
        loads, so its probes fail meanwhile, and its liveness probe may stop it."""
        steps = engine.boot()
        probes: asyncio.Task[bool] | None = None
        try:
            while True:
                try:
                    wait = next(steps)
                except StopIteration as done:
                    return Booted(exit=done.value)
                if probes is None:
                    probes = asyncio.create_task(
                        self.fail_probes(runtime, cname, container, status.get("podIP", ""), True)
                    )
                timer = asyncio.create_task(asyncio.sleep(wait.seconds))
                finished, _ = await asyncio.wait(
                    {probes, timer}, return_when=asyncio.FIRST_COMPLETED
                )
                if probes in finished:
                    timer.cancel()
                    return Booted(killed=probes.result(), deleted=not probes.result())
        finally:
            if probes is not None and not probes.done():
                probes.cancel()

    def rotate_logs(self, pod_name: str) -> None:
        """The kubelet's log rotation for the pod's current container run."""
        for runtime in self.pods.values():
            if runtime.name == pod_name and runtime.runs:
                runtime.runs[-1].rotate()

    async def fail_probes(
        self, runtime: PodRuntime, cname: str, container: dict[str, Any], ip: str, hung: bool
    ) -> bool:
        """Readiness and liveness probes that keep failing, each on its own schedule
        (pkg/kubelet/prober/worker.go: the first after initialDelaySeconds, then every
        periodSeconds). `failureThreshold` liveness failures in a row (default 3) kill the
        container to be restarted (kuberuntime_manager.go computePodActions: "Container %s
        failed liveness probe, will be restarted", event Killing). True when killed.

        What a failure says is pkg/probe/http/http.go DoHTTPProbe's output: the status
        code, or the HTTP client's error (`Get "<url>": dial tcp ...`) when nothing listens.
        """
        s = self.settings
        probes = {
            name: container[key]
            for name, key in (("Readiness", "readinessProbe"), ("Liveness", "livenessProbe"))
            if container.get(key)
        }
        if not probes:  # nothing probes it: no failure to report, nothing to kill it
            await runtime.deleting.wait()
            return False
        due = {name: float(p.get("initialDelaySeconds", 0)) for name, p in probes.items()}
        threshold = int(probes.get("Liveness", {}).get("failureThreshold", 3))

        def failure(probe: dict[str, Any]) -> str:
            get = probe.get("httpGet") or {}
            port, path = get.get("port", 8080), get.get("path", "/")
            if hung:
                return (
                    f'Get "http://{ip}:{port}{path}": dial tcp {ip}:{port}: '
                    "connect: connection refused"
                )
            return "HTTP probe failed with statuscode: 503"

        now, failures = 0.0, 0
        while True:
            name = min(due, key=lambda n: due[n])
            if await self.pause(runtime, s.scaled(due[name] - now)):
                return False
            now = due[name]
            due[name] += float(probes[name].get("periodSeconds", 10))
            message = f"{name} probe failed: {failure(probes[name])}"
            self.event(runtime, "Unhealthy", message, "Warning")
            if name == "Liveness":
                failures += 1
                if failures >= threshold:
                    self.event(
                        runtime,
                        "Killing",
                        f"Container {cname} failed liveness probe, will be restarted",
                    )
                    return True

    async def run_to_completion(
        self,
        runtime: PodRuntime,
        status: dict[str, Any],
        cname: str,
        image: str,
        container: dict[str, Any],
    ) -> None:
        """A container that does one thing and exits: a cron trigger's curl. The pod ends
        Succeeded or Failed (restartPolicy Never, as the triggers pdwatch renders use)."""
        run = ContainerLog()
        runtime.runs.append(run)
        started_at = now_rfc3339()
        self.event(runtime, "Created", f"Created container: {cname}")
        self.event(runtime, "Started", f"Started container {cname}")
        status["phase"] = "Running"
        status["podIP"] = status.get("podIP") or self.allocate_ip(runtime)
        status["podIPs"] = [{"ip": status["podIP"]}]
        running = {"running": {"startedAt": started_at}}
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "True")
        status["containerStatuses"] = [
            self.container_status(cname, image, 0, running, started=True, ready=True)
        ]
        self.write_status(runtime, status)
        if await self.pause(runtime, self.settings.start_delay):
            return await self.finish(runtime, started=True)
        command = container.get("command") or []  # curlimages/curl's entrypoint is curl
        args = [*command[1:], *(container.get("args") or [])]
        code, output = await self.curl(runtime.namespace, args)
        for line in output:
            run.append(line)
        run.close()
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "False")
            for c in status["conditions"]:
                if c["type"] == name:
                    c["reason"] = "PodCompleted"
        terminated = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": started_at,
                "finishedAt": now_rfc3339(),
                "containerID": f"containerd://{runtime.uid[:12]}",
            }
        }
        status["containerStatuses"] = [self.container_status(cname, image, 0, terminated)]
        self.write_status(runtime, status)
        await runtime.deleting.wait()
        await self.finish(runtime, started=False)

    async def curl(self, namespace: str, args: list[str]) -> tuple[int, list[str]]:
        """curl against the cluster's Services: (exit code, what it printed). Knows the
        options the cron triggers use: -X, -d, -H, -f/--fail, -s, -S, -sS."""
        method, body, fail, url = "", None, False, ""
        words = iter(args)
        for word in words:
            if word in ("-X", "--request"):
                method = next(words, "")
            elif word in ("-d", "--data", "--data-raw"):
                body = next(words, "")
            elif word in ("-H", "--header"):
                next(words, "")
            elif word in ("-f", "--fail") or (
                word.startswith("-") and "f" in word[1:] and not word.startswith("--")
            ):
                fail = True
            elif not word.startswith("-"):
                url = word
        method = method or ("POST" if body is not None else "GET")
        rest = url.split("://", 1)[-1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        parts = host.split(".")
        service_ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
        endpoints = self.ready_endpoints(service_ns, parts[0])
        if endpoints is None or (len(parts) > 2 and parts[2] != "svc"):
            return 6, [f"curl: (6) Could not resolve host: {host}"]
        if not endpoints:
            return 7, [
                f"curl: (7) Failed to connect to {host} port {port or 80} after 0 ms: "
                "Couldn't connect to server"
            ]
        code, text, _ = await self.call(
            random.choice(endpoints), method, "/" + path, (body or "").encode()
        )
        if fail and code >= 400:
            return 22, [f"curl: (22) The requested URL returned error: {code}"]
        return 0, [text]

    def ready_endpoints(self, namespace: str, service_name: str) -> list[PodRuntime] | None:
        """The serving pods behind a Service's ready endpoints; None when there is no
        Service."""
        service = self.store.find(SERVICES, namespace, service_name)
        if service is None:
            return None
        selector = (service.get("spec") or {}).get("selector") or {}
        endpoints = []
        for pod in self.store.list(PODS, namespace):
            labels = pod["metadata"].get("labels") or {}
            runtime = self.pods.get(pod["metadata"]["uid"])
            if (
                selector
                and all(labels.get(k) == v for k, v in selector.items())
                and not pod["metadata"].get("deletionTimestamp")
                and runtime
                and (runtime.engine or runtime.process)
                and any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in (pod.get("status") or {}).get("conditions") or []
                )
            ):
                endpoints.append(runtime)
        return endpoints

    async def call(
        self,
        endpoint: PodRuntime,
        method: str,
        path: str,
        body: bytes,
        forwarded: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        """One HTTP request to a pod's engine: (status, body, content type). A process is
        called over HTTP on its address, with the `forwarded` headers of the request that
        came to the proxy; the simulated engine answers in process."""
        if endpoint.process is not None:
            url = f"http://{endpoint.address}:{endpoint.port}/{path.lstrip('/')}"
            headers = {"Content-Type": "application/json"} if body else {}
            headers.update(forwarded or {})
            try:
                async with self.session.request(method, url, data=body, headers=headers) as got:
                    text = await got.text(errors="replace")
                    return got.status, text, got.content_type
            except aiohttp.ClientError as exc:
                # what the API server's proxy answers when the backend does not answer
                return 503, f"error trying to reach service: {exc}", "text/plain"
        engine = endpoint.engine
        if engine is None:  # the container stopped while the request was on its way
            return (
                503,
                f"error trying to reach service: dial tcp {endpoint.address}:8080: connect: "
                "connection refused",
                "text/plain",
            )
        path = path.split("?", 1)[0].strip("/")
        if path == "health" and method == "GET":
            return 200, "ok", "text/plain"
        if path == "run" and method == "POST":
            try:
                payload = json.loads(body) if body.strip() else {}
            except ValueError:
                return 400, '{"error":"invalid JSON body"}', "application/json"
            return 200, json.dumps(engine.run(payload)), "application/json"
        return 404, "404 page not found\n", "text/plain"

    async def finish(self, runtime: PodRuntime, started: bool) -> None:
        """Stop the container (when one runs) and remove a pod that is being deleted."""
        if not runtime.deleting.is_set():
            return
        pod = self.pod(runtime)
        if pod is None:
            return
        cname = self.container_name(pod)
        if started:
            self.event(runtime, "Killing", f"Stopping container {cname}")
            if runtime.process is not None:
                await runtime.process.stop(self.grace(pod))
                runtime.process = None
            else:
                await asyncio.sleep(self.settings.stop_delay)
        for run in runtime.runs:
            run.close()
        runtime.engine = None
        if started:
            self.report_stopped(runtime)
        with contextlib.suppress(ApiError):
            self.api.delete(PODS, runtime.namespace, runtime.name, grace_seconds=0)

    def report_stopped(self, runtime: PodRuntime) -> None:
        """A terminating pod is written not ready once its container has stopped, before it
        is removed (pkg/kubelet/kubelet.go syncTerminatedPod: "generate the final status of
        the pod", with the containers' end states, then statusManager.TerminatePod; the
        status manager deletes the pod after that). The engine has no SIGTERM handler, so
        the runtime reports death by signal 15: exit code 128+15, reason Error."""
        pod = self.pod(runtime)
        if pod is None or not pod.get("status"):
            return
        status = clone(pod["status"])
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "False")
        for c in status.get("conditions") or []:
            if c["type"] in ("Ready", "ContainersReady") and c["status"] == "False":
                c.setdefault("reason", "ContainersNotReady")
        for container in status.get("containerStatuses") or []:
            running = (container.get("state") or {}).get("running")
            if running is None:
                continue
            container["ready"] = False
            container["started"] = False
            container["state"] = {
                "terminated": {
                    "exitCode": 143,
                    "reason": "Error",
                    "startedAt": running.get("startedAt", now_rfc3339()),
                    "finishedAt": now_rfc3339(),
                    "containerID": container.get("containerID", ""),
                }
            }
        with contextlib.suppress(ApiError):
            self.write_status(runtime, status)

    # --- helpers ----------------------------------------------------------------------------

    def allocate_ip(self, runtime: PodRuntime) -> str:
        """The pod's address: one its engine really listens on when engines are processes."""
        if self.deno is not None:
            runtime.address = self.network.allocate()
            return runtime.address
        self.next_ip += 1
        return f"10.244.0.{self.next_ip % 250 + 2}"

    @staticmethod
    def container_status(
        name: str,
        image: str,
        restarts: int,
        state: dict[str, Any],
        last_state: dict[str, Any] | None = None,
        started: bool = False,
        ready: bool = False,
    ) -> dict[str, Any]:
        return {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": ready,
            "restartCount": restarts,
            "started": started,
            "state": state,
            "lastState": last_state or {},
        }

    def mount_problem(self, pod: dict[str, Any]) -> str | None:
        """The first volume the kubelet cannot set up, worded as its FailedMount event."""
        ns = pod["metadata"]["namespace"]
        for volume in pod["spec"].get("volumes") or []:
            for kind, source_key, resource in (
                ("configmap", "configMap", CONFIGMAPS),
                ("secret", "secret", SECRETS),
            ):
                source = volume.get(source_key)
                if source is None:
                    continue
                name = source.get("name") if kind == "configmap" else source.get("secretName")
                obj = self.store.find(resource, ns, name or "")
                prefix = f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                if obj is None:
                    if not source.get("optional"):
                        return f'{prefix}{kind} "{name}" not found'
                    continue
                keys = set(obj.get("data") or {}) | set(obj.get("binaryData") or {})
                for item in source.get("items") or []:
                    if item.get("key") not in keys and not source.get("optional"):
                        return (
                            f"{prefix}{kind} references non-existent config key: {item.get('key')}"
                            if kind == "configmap"
                            else f"{prefix}references non-existent secret key: {item.get('key')}"
                        )
        return None

    def projected_files(self, pod: dict[str, Any]) -> dict[str, str]:
        """The files the container sees below /app/workflow, fixed at container start."""
        container = pod["spec"]["containers"][0]
        mount = next(
            (
                m
                for m in container.get("volumeMounts") or []
                if m.get("mountPath", "").rstrip("/") == CODE_MOUNT
            ),
            None,
        )
        if mount is None:
            return {}
        volumes: list[dict[str, Any]] = pod["spec"].get("volumes") or []
        volume = next((v for v in volumes if v.get("name") == mount["name"]), {})
        source = volume.get("configMap")
        if not source:
            return {}
        cm = self.store.find(CONFIGMAPS, pod["metadata"]["namespace"], source.get("name", ""))
        data = (cm or {}).get("data") or {}
        items = source.get("items")
        if items is None:
            return dict(data)
        return {i["path"]: data[i["key"]] for i in items if i.get("key") in data}

    # --- logs -------------------------------------------------------------------------------

    async def serve_log(
        self, request: web.Request, ns: str, name: str, query: MultiMapping[str]
    ) -> web.StreamResponse:
        pod = self.store.find(PODS, ns, name)
        if pod is None:
            raise not_found(PODS, name)
        cname = self.container_name(pod)
        wanted = query.get("container") or cname
        if wanted != cname:
            raise bad_request(f"container {wanted} is not valid for pod {name}")
        runtime = self.pods.get(pod["metadata"]["uid"])
        runs = runtime.runs if runtime else []
        previous = query_bool(query, "previous")
        if previous:
            if len(runs) < 2:
                raise bad_request(
                    f'previous terminated container "{cname}" in pod "{name}" not found'
                )
            run = runs[-2]
        elif not runs:
            reason = runtime.waiting_reason if runtime else "ContainerCreating"
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                detail = "trying and failing to pull image"
            else:
                detail = reason
            raise bad_request(f'container "{cname}" in pod "{name}" is waiting to start: {detail}')
        else:
            run = runs[-1]
        lines = list(run.lines[run.start :])
        since = query.get("sinceSeconds")
        if since:
            cutoff = time.time() - int(since)
            lines = [line for line in lines if line.at >= cutoff]
        tail = query.get("tailLines")
        start_index = len(run.lines) - len(lines)
        if tail is not None and tail.lstrip("-").isdigit() and int(tail) >= 0:
            skip = max(0, len(lines) - int(tail))
            lines = lines[skip:]
            start_index += skip
        stamps = query_bool(query, "timestamps")
        limit = int(query.get("limitBytes") or 0)
        follow = query_bool(query, "follow")

        def render(line: LogLine) -> bytes:
            text = line.text + "\n"
            if stamps:
                text = (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line.at))
                    + f".{int((line.at % 1) * 1e9):09d}Z "
                    + text
                )
            return text.encode()

        if not follow:
            body = b"".join(render(line) for line in lines)
            if limit:
                body = body[:limit]
            return web.Response(body=body, content_type="text/plain")
        response = await start_stream(request, self.faults, "text/plain")
        sent = 0
        position = start_index
        try:
            while True:
                while position < len(run.lines):
                    chunk = render(run.lines[position])
                    if limit and sent + len(chunk) > limit:
                        chunk = chunk[: limit - sent]
                    await response.write(chunk)
                    sent += len(chunk)
                    position += 1
                    if limit and sent >= limit:
                        return response
                if run.done:
                    break
                waiter = asyncio.ensure_future(run.wait(position))
                dropped = asyncio.ensure_future(self._dropped(response))
                done, pending = await asyncio.wait(
                    {waiter, dropped}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
                if dropped in done:
                    cut(request)
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.faults.streams.discard(response)
        return response

    async def _dropped(self, response: web.StreamResponse) -> None:
        """Resolves when a fault hook drops this stream."""
        while not self.faults.dropped(response):
            await asyncio.sleep(0.05)

    # --- service proxy ----------------------------------------------------------------------

    async def proxy(
        self, request: web.Request, ns: str, service_ref: str, subpath: str
    ) -> web.StreamResponse:
        parts = service_ref.split(":")
        name = parts[1] if len(parts) == 3 else parts[0]
        endpoints = self.ready_endpoints(ns, name)
        if endpoints is None:
            raise not_found(SERVICES, name)
        if not endpoints:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        target = subpath if not request.query_string else f"{subpath}?{request.query_string}"
        code, text, content_type = await self.call(
            random.choice(endpoints),
            request.method,
            target,
            await request.read(),
            forwarded_headers(request),
        )
        return web.Response(status=code, text=text, content_type=content_type)

    async def proxy_pod(
        self, request: web.Request, ns: str, pod_ref: str, subpath: str
    ) -> web.StreamResponse:
        """`pods/NAME:PORT/proxy/PATH`: to that pod, Ready or not, as the API server's pod
        proxy dials the pod's address."""
        name = pod_ref.split(":")[0]
        # RBAC's verb for a proxy subresource is the HTTP method's
        verb = PROXY_VERBS.get(request.method, request.method.lower())
        if (verb, "pods/proxy") in self.api.forbidden:
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: User "pdwatch-embedded" cannot {verb} resource '
                f'"pods/proxy" in API group "" in the namespace "{ns}"',
                {"name": name, "kind": "pods"},
            )
        pod = self.store.find(PODS, ns, name)
        if pod is None:
            raise not_found(PODS, name)
        runtime = self.pods.get(pod["metadata"]["uid"])
        if runtime is None or not (runtime.engine or runtime.process):
            address = runtime.address if runtime else ""
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {address}:8080: connect: "
                "connection refused",
            )
        target = subpath if not request.query_string else f"{subpath}?{request.query_string}"
        code, text, content_type = await self.call(
            runtime, request.method, target, await request.read(), forwarded_headers(request)
        )
        return web.Response(status=code, text=text, content_type=content_type)


PROXY_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """The API server's proxy forwards the request's headers, without the credentials its
    authentication consumed and the hop-by-hop ones (a webhook's signature and event
    headers reach the engine)."""
    return {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}


def set_condition(status: dict[str, Any], type_: str, value: str) -> None:
    for c in status.get("conditions") or []:
        if c["type"] == type_:
            if c["status"] != value:
                c["lastTransitionTime"] = now_rfc3339()
            c["status"] = value
            if value == "True":
                c.pop("reason", None)
                c.pop("message", None)
