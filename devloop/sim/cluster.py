"""Start and stop the embedded cluster in-process; hooks for tests and for `--embedded`.

It runs on its own thread and event loop, so a blocking client (the official
`kubernetes` client, kubectl in a subprocess) and an asyncio application can both use
it. Hooks that change its behaviour run on its loop through `call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from aiohttp import web

from devloop.sim import resources
from devloop.sim.api import EVENTS, Api
from devloop.sim.batch import Batch
from devloop.sim.controllers import Controllers
from devloop.sim.endpoints import EndpointSlices
from devloop.sim.errors import ApiError
from devloop.sim.faults import Faults, Rule
from devloop.sim.proxy import Forwarder
from devloop.sim.scheduler import NODE_NAME, Scheduler
from devloop.sim.server import make_app
from devloop.sim.settings import ImageBehaviour, SimSettings
from devloop.sim.store import Store, parse_rfc3339

CONTEXT = "pdwatch-embedded"
T = TypeVar("T")

if TYPE_CHECKING:
    from devloop.node.node import Node


def graceful(pod: dict[str, Any]) -> bool:
    """Whether a pod's deletion waits for its node (pod strategy CheckGracefulDelete: not
    one that was never bound, nor one that has finished)."""
    phase = (pod.get("status") or {}).get("phase")
    return bool((pod.get("spec") or {}).get("nodeName")) and phase not in ("Succeeded", "Failed")


__all__ = ["CONTEXT", "EmbeddedCluster", "ImageBehaviour", "Rule", "SimSettings"]


class EmbeddedCluster:
    def __init__(self, settings: SimSettings | None = None, port: int = 0) -> None:
        self._expiry: asyncio.Task[None] | None = None
        self.settings = settings or SimSettings()
        self.port = port
        self.faults = Faults()
        self.request_count = 0
        # (monotonic time, method, path, query) of every request, when a benchmark asks
        self.request_log: list[tuple[float, str, str, str]] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.store = Store()
        self.api = Api(self.store)
        self.controllers: Controllers | None = None
        self.batch: Batch | None = None
        self.node_faults = Faults()  # never set: the node's own connection
        self.node: Node | None = None
        self.forwarder: Forwarder = None  # type: ignore[assignment]  # set on start
        self._node_runner: web.AppRunner | None = None
        self._scheduler: Scheduler | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> EmbeddedCluster:
        started: Future[None] = Future()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self.loop = loop
            try:
                loop.run_until_complete(self._boot())
            except BaseException as exc:  # report to the starting thread, then end
                started.set_exception(exc)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            # what is still in flight (a proxied request waiting on an engine) ends here,
            # as asyncio.run ends its tasks, not destroyed pending with the loop
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=main, name="pdwatch-embedded-cluster", daemon=True)
        self._thread.start()
        started.result(timeout=30)
        return self

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop = None

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _boot(self) -> None:
        self._scheduler = Scheduler(self.api, self.store, self.settings)
        EndpointSlices(self.api, self.store)
        self.api.on_pod_delete = graceful
        self.controllers = Controllers(
            self.api,
            self.store,
            time_scale=self.settings.time_scale,
            service_account_delay=lambda: self.settings.service_account_delay,
        )
        self.controllers.start()
        self.batch = Batch(self.api, self.store, self.settings)
        self.batch.start()
        self._expiry = asyncio.get_running_loop().create_task(self._expire_events())
        self._bootstrap()
        await self._serve()
        await self._start_node()

    async def _start_node(self) -> None:
        """pdwatch's node (the one Kubernetes' own control plane runs with), talking to this
        API server on a port of its own, its pods on loopback addresses of their own."""
        from devloop.node.node import Node
        from devloop.node.podnet import PodNetwork
        from devloop.node.rest import Rest

        runner = web.AppRunner(
            make_app(self, node_side=True), access_log=None, shutdown_timeout=0.5
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._node_runner = runner
        node_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self.node = Node(Rest(node_url), NODE_NAME, self.settings, network=PodNetwork.loopback())
        await self.node.start()
        self.forwarder = Forwarder(self.api, self.store, f"http://127.0.0.1:{self.node.port}")

    async def _expire_events(self) -> None:
        """Events go `event_ttl` after their last write, as etcd's lease on each one ends
        (the API server's --event-ttl, one hour by default); a DELETED is sent to watches."""
        ttl = self.settings.event_ttl
        while True:
            await asyncio.sleep(min(60.0, ttl / 4))
            cutoff = time.time() - ttl
            for event in self.store.view(EVENTS):
                written = event.get("lastTimestamp") or event["metadata"].get("creationTimestamp")
                if written and parse_rfc3339(str(written)) < cutoff:
                    meta = event["metadata"]
                    with contextlib.suppress(ApiError):
                        self.store.delete(EVENTS, meta.get("namespace", ""), meta["name"])

    async def _serve(self) -> None:
        runner = web.AppRunner(make_app(self), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])

    async def _unserve(self) -> None:
        self.store.drop_all_watches()
        self.faults.streams.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        # the node first: it would watch again the moment its watches were dropped, and a
        # watch still open holds the server's cleanup for its whole shutdown timeout
        if self.node is not None:
            await self.node.stop()
        await self._unserve()  # every watch ended, pdwatch's side closed
        if self._scheduler is not None:
            await self._scheduler.stop()
        if self.forwarder is not None:
            await self.forwarder.close()
        if self._node_runner is not None:
            await self._node_runner.cleanup()
        if self.controllers:
            await self.controllers.stop()
        if self.batch:
            await self.batch.stop()

    def _bootstrap(self) -> None:
        namespaces = resources.of_kind("v1", "Namespace")
        accounts = resources.of_kind("v1", "ServiceAccount")
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.api.create(namespaces, "", {"metadata": {"name": name}}, "kube-apiserver")
            # A cluster is reported ready once its default ServiceAccounts exist (kind
            # waits for them): they are there before the first request.
            self.api.create(
                accounts, name, {"metadata": {"name": "default"}}, "kube-controller-manager"
            )
        self.api.create(
            resources.of_kind("node.k8s.io/v1", "RuntimeClass"),
            "",
            {"metadata": {"name": "gvisor"}, "handler": "runsc"},
            "kubectl",
        )
        self.api.create(
            resources.of_kind("v1", "Service"),
            "default",
            {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver"}},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}]},
            },
            "kube-apiserver",
        )

    # --- running code on the cluster's loop ----------------------------------------------------

    def call(self, fn: Callable[[], T], timeout: float = 10) -> T:
        """Run `fn` on the cluster's loop and return its result (its state is not thread-safe)."""
        assert self.loop is not None, "the cluster is not running"

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    # --- address and kubeconfig -------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kubeconfig(self, namespace: str = "default", context: str = CONTEXT) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(
        self, path: Path, namespace: str = "default", context: str = CONTEXT
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace, context), sort_keys=False))
        return path

    # --- fault and behaviour hooks ------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        self.faults.latency_s = seconds

    def fail_next(self, count: int, status: int = 500) -> None:
        self.call(lambda: self.faults.fail(count, status))

    def add_fault(self, rule: Rule) -> None:
        """Fail, delay or hold the requests a rule picks out (faults.Rule)."""
        self.call(lambda: self.faults.rules.append(rule))

    def clear_faults(self) -> None:
        """Drop every rule and release the held requests."""

        def clear() -> None:
            self.faults.rules.clear()
            self.faults.release.set()
            self.faults.release = asyncio.Event()

        self.call(clear)

    @property
    def held_requests(self) -> int:
        return self.call(lambda: self.faults.held)

    def drop_streams(self) -> None:
        """Cut every open watch and log stream, as a load balancer or a restart would."""

        def drop() -> None:
            self.store.drop_all_watches()
            self.faults.streams.clear()

        self.call(drop)

    def stop_server(self) -> None:
        """Stop answering on the port (connections refused), keeping all state."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self._unserve(), self.loop).result(10)

    def start_server(self) -> None:
        """Answer again on the same port, with the state kept by stop_server."""
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)

    def set_image(
        self,
        image: str,
        ready: bool = True,
        oom_killed: bool = False,
        exit_code: int | None = None,
    ) -> None:
        behaviour = ImageBehaviour(ready, oom_killed=oom_killed, exit_code=exit_code)
        self.call(lambda: self.settings.images.__setitem__(image, behaviour))

    def add_private_registry(self, host: str) -> None:
        """A registry that answers an anonymous pull "authorization failed"."""
        self.call(lambda: self.settings.private_registries.add(host))

    def add_failing_registry(self, host: str) -> None:
        """A registry that answers every pull with a server error."""
        self.call(lambda: self.settings.failing_registries.add(host))

    def rotate_logs(self, pod: str) -> None:
        """Rotate the pod's container log, as the kubelet does past its size limit."""
        self.call(lambda: self.node.rotate_logs(pod) if self.node else None)

    def forbid(self, verb: str, plural: str) -> None:
        self.call(lambda: self.api.forbidden.add((verb, plural)))
