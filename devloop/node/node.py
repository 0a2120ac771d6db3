"""A node that any API server can drive, as kwok's and the kubelet are: a client of the
API. It registers a Node (capacity, conditions, the kubelet endpoint) and keeps it alive
through a Lease, runs the pods the scheduler binds to it (volumes from the API, image
pulls as a registry answers them, the engine serving on the pod's address, real HTTP
probes on the pod's own schedule, restarts with the kubelet's back-off), writes pod status
and events through the API as the kubelet does, removes pods once their containers have
stopped, and serves the kubelet API (container logs) over HTTPS for the API server's
`pods/log`.

Only the machine is simulated: the engine image runs as the stand-in engine under a real
Deno (engine-image/main.ts; devloop.sim.engine where settings say "simulated"), images are
the settings' (which exist, which registries refuse); every decision Kubernetes makes
(scheduling, controllers, admission, garbage collection) is the API server's and its
controllers'.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import platform
import socket
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from devloop.node import machine
from devloop.node.containers import EngineContainer, curl
from devloop.node.denoengine import DenoEngine, engine_flavor, find_deno
from devloop.node.images import NO_DENO, image_reference, pullable, valid_reference
from devloop.node.logs import ContainerLog
from devloop.node.permissions import container_flags, engine_config_mount
from devloop.node.podnet import PodNetwork
from devloop.node.prober import next_relist, probe_container
from devloop.node.recorder import EventRecorder, rfc3339
from devloop.node.rest import MERGE_PATCH, ApiStatus, Rest, retrying
from devloop.sim.endpoints import ready_addresses, service_port
from devloop.sim.engine import Exit
from devloop.sim.settings import ImageBehaviour, SimSettings

KUBELET_VERSION = "v1.37.2"
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
STATUS_SECONDS = 60.0
CODE_PORT = 8080


def now() -> str:
    return rfc3339(time.time())


def set_condition(status: dict[str, Any], type_: str, value: str, reason: str = "") -> None:
    for c in status.get("conditions") or []:
        if c["type"] == type_:
            if c["status"] != value:
                c["lastTransitionTime"] = now()
            c["status"] = value
            if value == "True":
                c.pop("reason", None)
                c.pop("message", None)
            elif reason:
                c["reason"] = reason
            return


def container_status(
    name: str,
    image: str,
    restarts: int,
    state: dict[str, Any],
    last_state: dict[str, Any] | None = None,
    *,
    started: bool = False,
    ready: bool = False,
    container_id: str = "",
) -> dict[str, Any]:
    status = {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": started,
        "state": state,
        "lastState": last_state or {},
    }
    if container_id:
        status["containerID"] = container_id
    return status


@dataclass
class PodWorker:
    pod: dict[str, Any]
    runs: list[ContainerLog] = field(default_factory=list)
    waiting_reason: str = "ContainerCreating"
    deleting: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    address: str = ""
    container: EngineContainer | DenoEngine | None = None

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def cname(self) -> str:
        return str(self.pod["spec"]["containers"][0]["name"])

    async def pause(self, seconds: float) -> bool:
        """Sleep; True when the pod is being deleted meanwhile."""
        if self.deleting.is_set():
            return True
        try:
            await asyncio.wait_for(self.deleting.wait(), max(seconds, 0))
        except TimeoutError:
            return False
        return True


class Node:
    def __init__(
        self,
        rest: Rest,
        name: str = "pdwatch-node",
        settings: SimSettings | None = None,
        *,
        network: PodNetwork | None = None,
        serving: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.rest, self.name = rest, name
        self.settings = settings or SimSettings()
        self.started = time.monotonic()  # the relists tick from here (prober.until_relist)
        self.network = network or PodNetwork()
        self.serving, self.client_ca, self.address = serving, client_ca, address
        self.recorder = EventRecorder(rest, "kubelet", name)
        self.pods: dict[str, PodWorker] = {}
        self.secrets_of: dict[str, dict[str, bytes]] = {}  # pod uid → its Secret volume
        self.configs_of: dict[str, str] = {}  # pod uid → the engine's deno.json, if mounted
        # The engine as a real Deno process, unless settings say simulated
        self.deno = find_deno() if self.settings.engine == "deno" else None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        self._prober: aiohttp.ClientSession | None = None
        self.ready = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._serve_kubelet_api()
        await retrying(self._register, attempts=20)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._renew_lease()),
            loop.create_task(self._report_status()),
            loop.create_task(self._follow_pods()),
            loop.create_task(self._follow_machine()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for worker in self.pods.values():
            if worker.task is not None:
                worker.task.cancel()
        for task in [*self._tasks, *(w.task for w in self.pods.values() if w.task)]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for worker in self.pods.values():
            if isinstance(worker.container, DenoEngine):
                await worker.container.stop(0)  # the node is going: no grace
            elif worker.container is not None:
                await worker.container.stop()
            for run in worker.runs:
                run.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._prober is not None:
            await self._prober.close()
        await self.rest.close()

    async def _serve_kubelet_api(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        context = None
        if self.serving is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(self.serving[0]), str(self.serving[1]))
            if self.client_ca is not None:  # only the API server (its kubelet client cert)
                context.load_verify_locations(str(self.client_ca))
                context.verify_mode = ssl.CERT_REQUIRED
        sock = socket.socket()
        sock.bind((self.address, 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, ssl_context=context)
        await site.start()

    def node_object(self) -> dict[str, Any]:
        capacity = {
            "cpu": "8",
            "memory": "16Gi",
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                },
            },
            "spec": {},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": self._conditions(),
                "addresses": [
                    {"type": "InternalIP", "address": self.address},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                "nodeInfo": {
                    "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, self.name).hex,
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.name)),
                    "bootID": str(uuid.uuid4()),
                    "kernelVersion": platform.release(),
                    "osImage": "pdwatch node",
                    "containerRuntimeVersion": "pdwatch://0.1.0",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    def _conditions(self) -> list[dict[str, Any]]:
        stamp = now()
        pressure = [
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ]
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": self._since,
            }
            for kind, reason, message in pressure
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": self._since,
            }
        )
        return conditions

    _since = now()

    async def _register(self) -> None:
        body = self.node_object()
        try:
            await self.rest.request("POST", "/api/v1/nodes", body)
        except ApiStatus as exc:
            if exc.code != 409:
                raise
        await self.rest.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}/status",
            {"status": body["status"]},
            content_type=MERGE_PATCH,
        )
        self.ready.set()

    async def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        while True:
            stamp = datetime_micro()
            with contextlib.suppress(ApiStatus, aiohttp.ClientError, OSError, TimeoutError):
                try:
                    await self.rest.request(
                        "PATCH", path, {"spec": {"renewTime": stamp}}, content_type=MERGE_PATCH
                    )
                except ApiStatus as exc:
                    if exc.code != 404:
                        raise
                    await self.rest.request(
                        "POST",
                        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                        {
                            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
                            "spec": {
                                "holderIdentity": self.name,
                                "leaseDurationSeconds": LEASE_SECONDS,
                                "renewTime": stamp,
                            },
                        },
                    )
            await asyncio.sleep(RENEW_SECONDS)

    async def _report_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_SECONDS)
            with contextlib.suppress(ApiStatus, aiohttp.ClientError, OSError, TimeoutError):
                await self.rest.request(
                    "PATCH",
                    f"/api/v1/nodes/{self.name}/status",
                    {"status": {"conditions": self._conditions()}},
                    content_type=MERGE_PATCH,
                )

    async def _follow_machine(self) -> None:
        """The machine's ConfigMap (devloop.node.machine), listed and watched; each version
        taken in is said on the Node."""
        baseline = machine.Baseline.of(self.settings)
        path = f"/api/v1/namespaces/{machine.NAMESPACE}/configmaps"
        selector = {"fieldSelector": f"metadata.name={machine.NAME}"}
        taken = ""
        while True:
            try:
                listed = await self.rest.request("GET", path, params=selector)
                items = listed.get("items") or []
                taken = await self._take_machine(baseline, items[0] if items else None, taken)
                version = listed["metadata"]["resourceVersion"]
                while True:
                    params = {**selector, "resourceVersion": version, "timeoutSeconds": "300"}
                    async for event in self.rest.watch(path, params):
                        obj = event["object"]
                        version = obj["metadata"].get("resourceVersion", version)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            taken = await self._take_machine(baseline, obj, taken)
                        elif event["type"] == "DELETED":
                            taken = await self._take_machine(baseline, None, taken)
            except asyncio.CancelledError:
                raise
            except ApiStatus as exc:  # a cluster that does not let the node read it
                await asyncio.sleep(10 if exc.code == 403 else 0.5)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                await asyncio.sleep(0.5)

    async def _take_machine(
        self, baseline: machine.Baseline, configmap: dict[str, Any] | None, taken: str
    ) -> str:
        version = configmap["metadata"]["resourceVersion"] if configmap else ""
        if version == taken:
            return taken
        baseline.apply(self.settings, machine.parse((configmap or {}).get("data") or {}))
        await self.rest.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}",
            {"metadata": {"annotations": {machine.ANNOTATION: version or None}}},
            content_type=MERGE_PATCH,
        )
        return version

    def rotate_logs(self, pod_name: str) -> None:
        """The kubelet's log rotation for the pod's current container run."""
        for worker in self.pods.values():
            if worker.name == pod_name and worker.runs:
                worker.runs[-1].rotate()

    # --- pods -------------------------------------------------------------------------------

    async def _follow_pods(self) -> None:
        """List and watch the pods bound to this node; relist on 410 or a dropped watch."""
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        while True:
            try:
                listed = await self.rest.request("GET", "/api/v1/pods", params=selector)
                seen = set()
                for pod in listed.get("items") or []:
                    seen.add(pod["metadata"]["uid"])
                    self._on_pod(pod)
                for uid in [u for u in self.pods if u not in seen]:
                    self._gone(uid)
                version = listed["metadata"]["resourceVersion"]
                while True:
                    async for event in self.rest.watch(
                        "/api/v1/pods",
                        {**selector, "resourceVersion": version, "timeoutSeconds": "300"},
                    ):
                        obj = event["object"]
                        version = obj["metadata"].get("resourceVersion", version)
                        if event["type"] == "BOOKMARK":
                            continue
                        if event["type"] == "DELETED":
                            self._gone(obj["metadata"]["uid"])
                        else:
                            self._on_pod(obj)
            except asyncio.CancelledError:
                raise
            except (ApiStatus, aiohttp.ClientError, OSError, TimeoutError, ValueError):
                await asyncio.sleep(0.5)

    def _on_pod(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.pods.get(uid)
        if worker is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and pod[
                "metadata"
            ].get("deletionTimestamp"):
                self._spawn_delete(pod)
                return
            worker = self.pods[uid] = PodWorker(pod)
            worker.task = asyncio.get_running_loop().create_task(self._run_pod(worker))
        worker.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            worker.deleting.set()

    def _spawn_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        asyncio.get_running_loop().create_task(
            self._delete_pod(meta["namespace"], meta["name"], meta["uid"])
        )

    def _gone(self, uid: str) -> None:
        worker = self.pods.pop(uid, None)
        if worker is None:
            return
        if worker.task is not None and not worker.task.done():
            worker.task.cancel()
        asyncio.get_running_loop().create_task(self._release(worker))

    async def _release(self, worker: PodWorker) -> None:
        if worker.container is not None:
            await worker.container.stop()
            worker.container = None
        for run in worker.runs:
            run.close()
        if worker.address:
            self.network.release(worker.address)
            worker.address = ""

    async def _write_status(self, worker: PodWorker, status: dict[str, Any]) -> None:
        """The status manager's write: a patch guarded by the pod's UID (a pod recreated
        under the same name is another pod)."""
        path = f"/api/v1/namespaces/{worker.namespace}/pods/{worker.name}/status"
        body = {"metadata": {"uid": worker.uid}, "status": status}
        try:
            updated = await retrying(
                lambda: self.rest.request("PATCH", path, body, content_type=MERGE_PATCH)
            )
        except ApiStatus as exc:
            if exc.code in (404, 409):
                return
            raise
        if updated:
            worker.pod = updated

    async def _event(
        self, worker: PodWorker, type_: str, reason: str, message: str, container: bool = True
    ) -> None:
        field_path = f"spec.containers{{{worker.cname}}}" if container else ""
        await self.recorder.record(worker.pod, type_, reason, message, field_path)

    async def _run_pod(self, worker: PodWorker) -> None:
        try:
            await self._lifecycle(worker)
        except asyncio.CancelledError:
            raise
        except (ApiStatus, aiohttp.ClientError, OSError):
            pass  # the pod or the API went away under us
        finally:
            for run in worker.runs:
                run.close()

    def _behaviour(self, image: str) -> ImageBehaviour | None:
        return self.settings.images.get(image)

    async def _lifecycle(self, worker: PodWorker) -> None:
        s = self.settings
        pod = worker.pod
        container = pod["spec"]["containers"][0]
        cname, image = container["name"], container.get("image", "")
        stamp = now()
        scheduled = [
            c
            for c in (pod.get("status") or {}).get("conditions") or []
            if c.get("type") == "PodScheduled"
        ] or [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp}]
        unready = f"containers with unready status: [{cname}]"
        status: dict[str, Any] = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "False",
                    "lastTransitionTime": stamp,
                },
                {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": unready,
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": unready,
                    "lastTransitionTime": stamp,
                },
                *scheduled,
            ],
            "hostIP": self.address,
            "hostIPs": [{"ip": self.address}],
            "startTime": stamp,
            "containerStatuses": [
                container_status(cname, image, 0, {"waiting": {"reason": "ContainerCreating"}})
            ],
        }
        await self._write_status(worker, status)
        retry = s.mount_retry
        while True:
            problem, files = await self._mount(worker.pod)
            if problem is None:
                break
            await self._event(worker, "Warning", "FailedMount", problem, container=False)
            if await worker.pause(s.scaled(retry)):
                return await self._finish(worker, started=False)
            retry = min(retry * 2, s.mount_retry_max)
        if await worker.pause(s.mount_delay):
            return await self._finish(worker, started=False)
        set_condition(status, "PodReadyToStartContainers", "True")
        worker.address = self.network.allocate()
        status["podIP"] = worker.address
        status["podIPs"] = [{"ip": worker.address}]
        if not await self._pull(worker, status, cname, image, container):
            return await self._finish(worker, started=False)
        behaviour = self._behaviour(image) or ImageBehaviour()
        if behaviour.program == "curl":
            return await self._run_to_completion(worker, status, cname, image, container)
        await self._run_restarting(worker, status, container, files, behaviour)

    async def _run_restarting(
        self,
        worker: PodWorker,
        status: dict[str, Any],
        container: dict[str, Any],
        files: dict[str, str],
        behaviour: ImageBehaviour,
    ) -> None:
        """Run the container, restarting it as the pod's restartPolicy says (kubelet
        doBackOff: the first restart at once; from the second on CrashLoopBackOff for 10 s,
        doubling to 5 min, reset after 10 min running)."""
        s = self.settings
        cname, image = container["name"], container.get("image", "")
        policy = worker.pod["spec"].get("restartPolicy", "Always")
        port = next(
            (int(p["containerPort"]) for p in container.get("ports") or [] if "containerPort" in p),
            CODE_PORT,
        )
        backoff, restarts = 0.0, 0
        last_state: dict[str, Any] = {}
        synced_at = time.monotonic()
        while True:
            run = ContainerLog()
            worker.runs.append(run)
            started_at = now()
            began = time.monotonic()
            container_id = f"containerd://{uuid.uuid4().hex}"
            await self._event(worker, "Normal", "Created", f"Created container: {cname}")
            await self._event(worker, "Normal", "Started", f"Started container {cname}")
            running = {"running": {"startedAt": started_at}}
            status["phase"] = "Running"
            status["containerStatuses"] = [
                container_status(
                    cname,
                    image,
                    restarts,
                    running,
                    last_state,
                    started=True,
                    container_id=container_id,
                )
            ]
            await self._write_status(worker, status)
            engine: EngineContainer | DenoEngine
            if self.deno is not None and behaviour == ImageBehaviour():
                secrets = self.secrets_of.get(worker.uid, {})
                engine = DenoEngine(
                    files,
                    secrets,
                    run,
                    self.network,
                    worker.address,
                    port,
                    self.deno,
                    container_flags(container),
                    self.configs_of.get(worker.uid),
                    engine_flavor(image),
                )
            else:
                if self.settings.engine == "deno" and behaviour == ImageBehaviour():
                    run.append(NO_DENO)
                engine = EngineContainer(files, run, behaviour, self.network, worker.address, port)
            worker.container = engine
            outcome = await self._supervise(worker, engine, container, status, restarts)
            if isinstance(engine, DenoEngine):
                grace = worker.pod["spec"].get("terminationGracePeriodSeconds", 30)
                await engine.stop(float(grace))
            else:
                await engine.stop()
            worker.container = None
            if outcome == "deleted":
                return await self._finish(worker, started=True)
            exit_ = outcome if isinstance(outcome, Exit) else Exit(143)
            oom = behaviour.oom_killed and outcome == "oom"
            if oom:
                exit_ = Exit(137)
            for name in ("Ready", "ContainersReady"):
                set_condition(status, name, "False", "ContainersNotReady")
            run.close()
            terminated = {
                "terminated": {
                    "exitCode": exit_.code,
                    "reason": "OOMKilled" if oom else ("Error" if exit_.code else "Completed"),
                    "startedAt": started_at,
                    "finishedAt": now(),
                    "containerID": container_id,
                }
            }
            last_state = terminated
            status["containerStatuses"] = [
                container_status(
                    cname, image, restarts, terminated, last_state, container_id=container_id
                )
            ]
            if policy == "Never" or (policy == "OnFailure" and exit_.code == 0):
                status["phase"] = "Failed" if exit_.code else "Succeeded"
                await self._write_status(worker, status)
                await worker.deleting.wait()
                return await self._finish(worker, started=False)
            await self._write_status(worker, status)
            if time.monotonic() - began >= s.scaled(s.crash_backoff_reset):
                backoff = 0.0
            if backoff:
                await self._event(
                    worker,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {cname} in pod "
                    f"{worker.name}_{worker.namespace}({worker.uid})",
                )
                worker.waiting_reason = "CrashLoopBackOff"
                status["containerStatuses"] = [
                    container_status(
                        cname,
                        image,
                        restarts,
                        {
                            "waiting": {
                                "reason": "CrashLoopBackOff",
                                "message": f"back-off {go_duration(backoff)} restarting failed "
                                f"container={cname} pod={worker.name}_{worker.namespace}"
                                f"({worker.uid})",
                            }
                        },
                        last_state,
                    )
                ]
                await self._write_status(worker, status)
                if await worker.pause(s.scaled(backoff)):
                    return await self._finish(worker, started=False)
            backoff = min(backoff * 2, s.crash_backoff_max) if backoff else s.crash_backoff
            restarts += 1
            if time.monotonic() - synced_at >= s.scaled(s.configmap_sync):
                problem, current = await self._mount(worker.pod)
                if problem is None:  # the volume now holds the objects' current data
                    files, synced_at = current, time.monotonic()

    async def _supervise(
        self,
        worker: PodWorker,
        engine: EngineContainer | DenoEngine,
        container: dict[str, Any],
        status: dict[str, Any],
        restarts: int,
    ) -> Exit | str:
        """Boot the engine with its probes running; the outcome: an Exit (it died), "killed"
        (its liveness probe failed failureThreshold times), "oom", or "deleted"."""
        booting = asyncio.ensure_future(
            engine.boot() if isinstance(engine, EngineContainer) else self._run_process(engine)
        )
        probing = asyncio.ensure_future(self._probe(worker, container, status, restarts))
        deleted = asyncio.ensure_future(worker.deleting.wait())
        try:
            waiting: set[asyncio.Future[Any]] = {booting, probing, deleted}
            while True:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if deleted in done:
                    return "deleted"
                if probing in done:
                    return "killed"
                if booting in done:
                    waiting.discard(booting)
                    exit_ = booting.result()
                    if exit_ is not None:
                        return exit_
                    if isinstance(engine, EngineContainer) and engine.behaviour.oom_killed:
                        return "oom"
        finally:
            for task in (booting, probing, deleted):
                task.cancel()

    @staticmethod
    async def _run_process(engine: DenoEngine) -> Exit:
        """A real engine process: serving from its start (the probes tell when it answers)
        until it exits."""
        await engine.start()
        return await engine.exited()

    async def _probe(
        self,
        worker: PodWorker,
        container: dict[str, Any],
        status: dict[str, Any],
        restarts: int,
    ) -> None:
        """The prober (devloop.node.prober) on the pod's own schedule, scaled as the node's
        back-offs are (`--time-scale`; 1 outside the tests), as the embedded kubelet's is.
        Returns when liveness failed failureThreshold times in a row."""

        async def set_ready(ready: bool) -> None:
            await self._set_ready(worker, status, container, restarts, ready)

        async def event(type_: str, reason: str, message: str) -> None:
            await self._event(worker, type_, reason, message)

        await probe_container(
            container,
            worker.address,
            self._probe_session,
            noticed=next_relist(self.started, self.settings.time_scale),
            sleep=self._scaled_sleep,
            set_ready=set_ready,
            event=event,
        )

    async def _scaled_sleep(self, seconds: float) -> None:
        await asyncio.sleep(self.settings.scaled(seconds))

    async def _set_ready(
        self,
        worker: PodWorker,
        status: dict[str, Any],
        container: dict[str, Any],
        restarts: int,
        ready: bool,
    ) -> None:
        value = "True" if ready else "False"
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, value, "ContainersNotReady")
        for entry in status.get("containerStatuses") or []:
            entry["ready"] = ready
        await self._write_status(worker, status)

    @property
    def _probe_session(self) -> aiohttp.ClientSession:
        """One connection pool for every probe (the kubelet's prober keeps one client)."""
        if self._prober is None or self._prober.closed:
            self._prober = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        return self._prober

    async def _run_to_completion(
        self,
        worker: PodWorker,
        status: dict[str, Any],
        cname: str,
        image: str,
        container: dict[str, Any],
    ) -> None:
        """A container that does one thing and exits: a cron trigger's curl."""
        run = ContainerLog()
        worker.runs.append(run)
        started_at = now()
        await self._event(worker, "Normal", "Created", f"Created container: {cname}")
        await self._event(worker, "Normal", "Started", f"Started container {cname}")
        status["phase"] = "Running"
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "True")
        status["containerStatuses"] = [
            container_status(
                cname, image, 0, {"running": {"startedAt": started_at}}, started=True, ready=True
            )
        ]
        await self._write_status(worker, status)
        command = container.get("command") or []  # curlimages/curl's entrypoint is curl
        code, output = await curl(
            [*command[1:], *(container.get("args") or [])],
            lambda host, port: self._resolve(worker.namespace, host, port),
        )
        for line in output:
            run.append(line)
        run.close()
        status["phase"] = "Succeeded" if code == 0 else "Failed"
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "False", "PodCompleted")
        status["containerStatuses"] = [
            container_status(
                cname,
                image,
                0,
                {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": started_at,
                        "finishedAt": now(),
                    }
                },
            )
        ]
        await self._write_status(worker, status)
        await worker.deleting.wait()
        await self._finish(worker, started=False)

    async def _resolve(self, namespace: str, host: str, port: int) -> str | None:
        """Cluster DNS and the Service's ready endpoints, as a pod's curl meets them:
        `address:targetPort`, "" when no endpoint is ready, None when no such Service."""
        parts = host.split(".")
        if len(parts) > 2 and parts[2] != "svc":
            return None
        service_ns = parts[1] if len(parts) > 1 and parts[1] != "svc" else namespace
        try:
            service = await self.rest.request(
                "GET", f"/api/v1/namespaces/{service_ns}/services/{parts[0]}"
            )
            slices = await self.rest.request(
                "GET",
                f"/apis/discovery.k8s.io/v1/namespaces/{service_ns}/endpointslices",
                params={"labelSelector": f"kubernetes.io/service-name={parts[0]}"},
            )
        except ApiStatus as exc:
            # no such Service: no such name; the cluster refusing the node its Service or
            # endpoints: nothing to connect to (it used to end the pod's run, never its pod)
            return None if exc.code == 404 else ""
        chosen = service_port(service, str(port)) or service_port(service)
        name = chosen.get("name", "") if chosen else ""
        for item in slices.get("items") or []:
            for address, number in ready_addresses(item, name):
                return f"{address}:{number}"
        return ""

    # --- volumes and images -----------------------------------------------------------------

    async def _mount(self, pod: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
        """The first volume the kubelet cannot set up, worded as its FailedMount event, or
        None and the files the engine sees below /app/workflow (fixed at container start).
        The Secret mounted at /app/secrets is kept in `self.secrets_of[uid]`."""
        namespace = pod["metadata"]["namespace"]
        container = pod["spec"]["containers"][0]
        code_volume = next(
            (
                m["name"]
                for m in container.get("volumeMounts") or []
                if m.get("mountPath", "").rstrip("/") == "/app/workflow"
            ),
            None,
        )
        secrets_volume = next(
            (
                m["name"]
                for m in container.get("volumeMounts") or []
                if m.get("mountPath", "").rstrip("/") == "/app/secrets"
            ),
            None,
        )
        config_mount = engine_config_mount(container)
        files: dict[str, str] = {}
        for volume in pod["spec"].get("volumes") or []:
            for kind, key, plural in (
                ("configmap", "configMap", "configmaps"),
                ("secret", "secret", "secrets"),
            ):
                source = volume.get(key)
                if source is None:
                    continue
                name = source.get("name") if kind == "configmap" else source.get("secretName")
                prefix = f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                try:
                    obj = await self.rest.request(
                        "GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}"
                    )
                except ApiStatus as exc:
                    if exc.code == 404:
                        if source.get("optional"):
                            continue
                        return f'{prefix}{kind} "{name}" not found', {}
                    return f"{prefix}{exc.message}", {}
                data = dict(obj.get("data") or {})
                if kind == "secret":
                    data = {
                        k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()
                    }
                keys = set(data) | set(obj.get("binaryData") or {})
                items = source.get("items")
                for item in items or []:
                    if item.get("key") not in keys and not source.get("optional"):
                        return (
                            f"{prefix}{kind} references non-existent config key: {item.get('key')}"
                            if kind == "configmap"
                            else f"{prefix}references non-existent secret key: {item.get('key')}"
                        ), {}
                if kind == "secret" and volume["name"] == secrets_volume:
                    raw = obj.get("data") or {}
                    self.secrets_of[pod["metadata"]["uid"]] = {
                        k: base64.b64decode(v) for k, v in raw.items()
                    }
                if config_mount and volume["name"] == config_mount["name"] and kind == "configmap":
                    text = data.get(config_mount.get("subPath", ""))
                    if text is not None:
                        self.configs_of[pod["metadata"]["uid"]] = text
                if volume["name"] == code_volume and kind == "configmap":
                    files = (
                        dict(data)
                        if items is None
                        else {i["path"]: data[i["key"]] for i in items if i.get("key") in data}
                    )
        return None, files

    async def _pull_secret(self, pod: dict[str, Any], host: str) -> bool:
        namespace = pod["metadata"]["namespace"]
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            try:
                secret = await self.rest.request(
                    "GET", f"/api/v1/namespaces/{namespace}/secrets/{ref.get('name', '')}"
                )
            except ApiStatus:
                continue
            encoded = (secret.get("data") or {}).get(".dockerconfigjson", "")
            try:
                config = json.loads(base64.b64decode(encoded or "e30="))
            except ValueError:
                continue
            if host in (config.get("auths") or {}):
                return True
        return False

    async def _pull(
        self,
        worker: PodWorker,
        status: dict[str, Any],
        cname: str,
        image: str,
        container: dict[str, Any],
    ) -> bool:
        """The image, present or pulled as the settings' registries answer; False when the
        pod was deleted while it could not be had."""
        s = self.settings
        if not valid_reference(image):
            why = (
                f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                f'"{image}": invalid reference format'
            )
            await self._event(worker, "Warning", "InspectFailed", why)
            await self._event(worker, "Warning", "Failed", "Error: InvalidImageName")
            worker.waiting_reason = "InvalidImageName"
            status["containerStatuses"] = [
                container_status(
                    cname, image, 0, {"waiting": {"reason": "InvalidImageName", "message": why}}
                )
            ]
            await self._write_status(worker, status)
            await worker.deleting.wait()
            return False
        policy = container.get("imagePullPolicy", "IfNotPresent")
        if image in s.images and policy != "Always":
            await self._event(
                worker, "Normal", "Pulled", f'Container image "{image}" already present on machine'
            )
            return True
        backoff = s.pull_backoff
        while True:
            await self._event(worker, "Normal", "Pulling", f'Pulling image "{image}"')
            began = time.monotonic()
            if await worker.pause(s.pull_delay):
                return False
            ref = image_reference(image)
            host = ref.split("/", 1)[0]
            denied = host in s.private_registries and not await self._pull_secret(worker.pod, host)
            # Docker Hub answers a repository it does not have as it answers a private one
            denied = denied or (host == "docker.io" and not pullable(image, s))
            failing = host in s.failing_registries
            if pullable(image, s) and not denied and not failing:
                ms = int((time.monotonic() - began) * 1000)
                await self._event(
                    worker,
                    "Normal",
                    "Pulled",
                    f'Successfully pulled image "{image}" in {ms}ms ({ms}ms including '
                    "waiting). Image size: 52428800 bytes.",
                )
                s.images.setdefault(image, ImageBehaviour())
                return True
            reason = pull_failure(ref, host, failing=failing, denied=denied)
            await self._event(
                worker, "Warning", "Failed", f'Failed to pull image "{image}": {reason}'
            )
            await self._event(worker, "Warning", "Failed", "Error: ErrImagePull")
            worker.waiting_reason = "ErrImagePull"
            status["containerStatuses"] = [
                container_status(
                    cname, image, 0, {"waiting": {"reason": "ErrImagePull", "message": reason}}
                )
            ]
            await self._write_status(worker, status)
            if await worker.pause(s.scaled(backoff) / 2):
                return False
            await self._event(worker, "Normal", "BackOff", f'Back-off pulling image "{image}"')
            await self._event(worker, "Warning", "Failed", "Error: ImagePullBackOff")
            worker.waiting_reason = "ImagePullBackOff"
            status["containerStatuses"] = [
                container_status(
                    cname,
                    image,
                    0,
                    {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}": ErrImagePull: {reason}',
                        }
                    },
                )
            ]
            await self._write_status(worker, status)
            if await worker.pause(s.scaled(backoff)):
                return False
            backoff = min(backoff * 2, s.pull_backoff_max)

    # --- the end of a pod -------------------------------------------------------------------

    async def _finish(self, worker: PodWorker, started: bool) -> None:
        """Stop the container and remove a pod that is being deleted (the status manager
        deletes it with grace 0 once its containers have stopped)."""
        if not worker.deleting.is_set():
            return
        self.secrets_of.pop(worker.uid, None)
        self.configs_of.pop(worker.uid, None)
        if started:
            await self._event(worker, "Normal", "Killing", f"Stopping container {worker.cname}")
            await asyncio.sleep(self.settings.stop_delay)
            await self._report_stopped(worker)
        await self._release(worker)
        await self._delete_pod(worker.namespace, worker.name, worker.uid)

    async def _delete_pod(self, namespace: str, name: str, uid: str) -> None:
        with contextlib.suppress(ApiStatus):
            await retrying(
                lambda: self.rest.request(
                    "DELETE",
                    f"/api/v1/namespaces/{namespace}/pods/{name}",
                    {
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": uid},
                    },
                )
            )

    async def _report_stopped(self, worker: PodWorker) -> None:
        """A terminating pod is written not ready once its container has stopped, with the
        container's end (the engine has no SIGTERM handler: 128+15)."""
        status = json.loads(json.dumps(worker.pod.get("status") or {}))
        for name in ("Ready", "ContainersReady"):
            set_condition(status, name, "False", "ContainersNotReady")
        for entry in status.get("containerStatuses") or []:
            running = (entry.get("state") or {}).get("running")
            if running is None:
                continue
            entry["ready"] = False
            entry["started"] = False
            entry["state"] = {
                "terminated": {
                    "exitCode": 143,
                    "reason": "Error",
                    "startedAt": running.get("startedAt", now()),
                    "finishedAt": now(),
                    **({"containerID": entry["containerID"]} if entry.get("containerID") else {}),
                }
            }
        status.pop("qosClass", None)
        await self._write_status(worker, status)

    # --- the kubelet API --------------------------------------------------------------------

    @staticmethod
    async def _healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        """GET /containerLogs/{ns}/{pod}/{container}, as the kubelet server answers it;
        errors are plain text with 400 (the API server turns them into a Status)."""
        ns, name = request.match_info["ns"], request.match_info["pod"]
        wanted = request.match_info["container"]
        worker = next((w for w in self.pods.values() if w.namespace == ns and w.name == name), None)
        if worker is None:
            return web.Response(status=404, text=f'pod "{name}" not found')
        if wanted != worker.cname:
            return web.Response(status=400, text=f"container {wanted} is not valid for pod {name}")
        query = request.query
        runs = worker.runs
        if query.get("previous") == "true":
            if len(runs) < 2:
                return web.Response(
                    status=400,
                    text=f'previous terminated container "{wanted}" in pod "{name}" not found',
                )
            run = runs[-2]
        elif not runs:
            reason = worker.waiting_reason
            if reason in ("ErrImagePull", "ImagePullBackOff"):
                reason = "trying and failing to pull image"
            return web.Response(
                status=400,
                text=f'container "{wanted}" in pod "{name}" is waiting to start: {reason}',
            )
        else:
            run = runs[-1]
        lines = list(run.lines)
        start = run.start
        if query.get("sinceSeconds"):
            cutoff = time.time() - int(query["sinceSeconds"])
            start = next(
                (i for i in range(run.start, len(lines)) if lines[i].at >= cutoff), len(lines)
            )
        elif query.get("sinceTime"):
            cutoff = parse_time(query["sinceTime"])
            start = next(
                (i for i in range(run.start, len(lines)) if lines[i].at >= cutoff), len(lines)
            )
        tail = query.get("tailLines")
        if tail is not None and tail.isdigit():
            start = max(start, len(lines) - int(tail))
        stamps = query.get("timestamps") == "true"
        limit = int(query.get("limitBytes") or 0)

        def render(index: int) -> bytes:
            line = run.lines[index]
            text = line.text + "\n"
            if stamps:
                text = (
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(line.at))
                    + f".{int((line.at % 1) * 1e9):09d}Z "
                    + text
                )
            return text.encode()

        if query.get("follow") != "true":
            body = b"".join(render(i) for i in range(start, len(lines)))
            return web.Response(body=body[:limit] if limit else body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent, position = 0, start
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            while True:
                while position < len(run.lines):
                    chunk = render(position)
                    if limit and sent + len(chunk) > limit:
                        chunk = chunk[: limit - sent]
                    await response.write(chunk)
                    sent += len(chunk)
                    position += 1
                    if limit and sent >= limit:
                        return response
                if run.done:
                    break
                await run.wait(position)
        return response


def parse_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def datetime_micro() -> str:
    """A Lease's MicroTime."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def go_duration(seconds: float) -> str:
    """Go's time.Duration String for whole seconds: 10s, 1m20s, 5m0s."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    return f"{whole // 60}m{whole % 60}s"


def pull_failure(ref: str, host: str, *, failing: bool, denied: bool) -> str:
    """containerd's words for a pull that failed."""
    head = f'rpc error: code = Unknown desc = failed to pull and unpack image "{ref}": '
    head += f'failed to resolve reference "{ref}": '
    if failing:
        repository = ref.split("/", 1)[1].rsplit(":", 1)[0]
        return (
            f"{head}unexpected status from HEAD request to https://{host}/v2/{repository}/"
            "manifests/latest: 500 Internal Server Error"
        )
    if denied:
        return (
            f"{head}pull access denied, repository does not exist or may require "
            "authorization: server message: insufficient_scope: authorization failed"
        )
    if host.endswith(".invalid"):
        return (
            f'{head}failed to do request: Head "https://{host}/v2/": dial tcp: lookup {host}: '
            "no such host"
        )
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": '
        f'failed to resolve reference "{ref}": {ref}: not found'
    )


def hostname() -> str:
    return os.uname().nodename
