"""A cycle cut short anywhere is finished by the next one: the latest save ends up served
by a Ready pod, with exactly one rollout for it.

The property is tested by failing the Nth request of a cycle, for every N a cycle makes:
with a retryable status (the loop retries), a non-retryable one (the cycle fails; a
touch of the file, which changes nothing, must finish it), a timeout, and pdwatch killed
between two calls (the cluster keeps what the Nth request did; a new pdwatch, with no
memory of the old, must finish it). Then the cases found in the field, each by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop import events
from devloop.kube.client import Kube
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster, Rule
from tests.helpers import STUCK_AT_LOAD, node_code
from tests.kubewait import rollout_complete
from tests.looprig import Rig, cycle_of, running_loop
from tests.target import image_from_files, machine_only, render_options

EXAMPLES = Path(__file__).parent.parent / "examples"
GREET = Path("nodes") / "greet.ts"
OK = ("ready", "unchanged", "applied")


def fast_settings() -> dict[str, Any]:
    return {"retry_initial_s": 0.05, "retry_max_s": 0.2, "debounce_ms": 20}


class Session:
    """A pdwatch that can be killed and started again against the same cluster."""

    def __init__(
        self, directory: Path, api_client: client.ApiClient, namespace: str, timeout_s: float
    ) -> None:
        self.directory = directory
        self.api_client = api_client
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.rig: Rig | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> events.CycleFinished:
        kube = Kube(self.api_client, self.namespace)
        kube.request_timeout = self.timeout_s
        self.rig = Rig(self.directory, kube, **fast_settings())
        self.task = asyncio.create_task(self.rig.loop.run())
        return await self.rig.cycle_done(timeout=30)

    async def kill(self) -> None:
        """As close to SIGKILL as in-process gets: the task is cancelled, nothing else."""
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        self.rig = None

    async def stop(self) -> None:
        if self.rig is not None and self.task is not None:
            self.rig.loop.quit()
            await asyncio.wait({self.task}, timeout=10)


@contextlib.asynccontextmanager
async def session(tmp_path: Path, kube: Kube, timeout_s: float = 15) -> AsyncIterator[Session]:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    s = Session(directory, kube.api_client, kube.namespace, timeout_s)
    first = await s.start()
    assert first.outcome == "ready"
    try:
        yield s
    finally:
        await s.stop()


def wanted(s: Session) -> Bundle:
    result = render(s.directory, render_options(s.namespace))
    assert isinstance(result, Bundle), result
    return result


async def replica_sets(kube: Kube) -> set[str]:
    listed = await kube.list("ReplicaSet", label_selector="app.kubernetes.io/name=hello")
    return {rs["metadata"]["name"] for rs in listed["items"]}


async def settled(s: Session, mark: int, touch: Callable[[], None]) -> events.CycleFinished:
    """The cycle of the latest save; a failed one is followed by a touch (nothing changes
    on disk), whose cycle must finish what the failed one left."""
    assert s.rig is not None
    target = wanted(s).content_hash
    done = await cycle_of(s.rig, mark, target)
    if done.outcome not in OK:
        mark = s.rig.mark()
        touch()
        done = await cycle_of(s.rig, mark, target)
    return done


async def assert_converged(s: Session, kube: Kube, marker: str, before: set[str]) -> None:
    assert s.rig is not None
    bundle = wanted(s)
    deployment = await kube.get("Deployment", "hello")
    assert deployment is not None
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["pdwatch/content-hash"] == bundle.content_hash
    pod = s.rig.loop.current_pod
    assert pod, "no serving pod"
    logs = await kube.pod_log(pod)
    assert marker in logs.splitlines(), (pod, logs)
    created = await replica_sets(kube) - before
    assert len(created) == 1, f"{len(created)} rollouts: {created}"


def touch(path: Path) -> Callable[[], None]:
    def do() -> None:
        path.write_text(path.read_text())

    return do


async def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.01)


MODES = {
    "500": lambda n: Rule(skip=n - 1, status=500),
    "403": lambda n: Rule(skip=n - 1, status=403),
    "timeout": lambda n: Rule(skip=n - 1, delay_s=1.0),
    "killed": lambda n: Rule(skip=n, count=10_000, status=0),  # everything after the Nth
}


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_a_fault_at_any_request_of_a_cycle_converges_with_one_rollout(
    tmp_path: Path,
    cluster: EmbeddedCluster,
    api_client: client.ApiClient,
    namespace: str,
    mode: str,
) -> None:
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube, timeout_s=0.5 if mode == "timeout" else 15) as s:
        assert s.rig is not None
        path = s.directory / GREET
        # How many requests a clean cycle makes, to fail each of them in turn.
        start, mark = cluster.request_count, s.rig.mark()
        path.write_text(node_code("clean"))
        assert (await s.rig.cycle_done(mark)).outcome == "ready"
        count = cluster.request_count - start
        assert count >= 5
        print(f"a clean cycle made {count} requests")
        for n in range(1, count + 1):
            marker = f"v{n}-{mode}"
            before = await replica_sets(kube)
            cluster.add_fault(MODES[mode](n))
            mark = s.rig.mark()
            path.write_text(node_code(f"{marker}"))
            if mode == "killed":
                rig, since = s.rig, mark
                await wait_until(
                    lambda rig=rig, since=since: (
                        cluster.held_requests > 0 or bool(rig.of(events.CycleFinished, since))
                    )
                )
                await s.kill()
                cluster.clear_faults()
                await s.start()  # a new pdwatch, knowing nothing of the old one
                done = await settled(s, 0, touch(path))
            else:
                done = await settled(s, mark, touch(path))
                cluster.clear_faults()
            assert done.outcome in OK, (n, done, s.rig.events[mark:] if s.rig else None)
            try:
                await assert_converged(s, kube, marker, before)
            except AssertionError:
                assert s.rig is not None
                for e in s.rig.events[mark:]:
                    print(e)
                raise


# --- the cases found in the field ---------------------------------------------------------


async def ready_after(s: Session, mark: int) -> events.CycleFinished:
    assert s.rig is not None
    return await s.rig.wait_for(events.CycleFinished, lambda e: e.outcome in OK, mark, 30)


@machine_only("a second engine image (set_image)")
async def test_a_failed_deployment_apply_does_not_lose_a_new_image(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """One 500 on the Deployment apply while base-image.txt changes: the new image must
    be applied by the retry, and later edits must roll out with it."""
    kube = Kube(api_client, namespace)
    cluster.set_image("engine:2")
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        cluster.add_fault(Rule(method="PATCH", path_part="/deployments/hello", status=500))
        mark = s.rig.mark()
        (s.directory / ".pipedreamer").mkdir()
        (s.directory / ".pipedreamer" / "base-image.txt").write_text("engine:2\n")
        await ready_after(s, mark)
        assert s.rig.of(events.Retrying, mark), "the fault was not hit"
        mark = s.rig.mark()
        (s.directory / GREET).write_text(node_code("after the image"))
        done = await cycle_of(s.rig, mark, wanted(s).content_hash)
        assert done.outcome == "ready"
        pod = await kube.get("Pod", s.rig.loop.current_pod)
        assert pod is not None and pod["spec"]["containers"][0]["image"] == "engine:2"


async def test_a_throttled_request_is_retried_no_sooner_than_the_server_asks(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """API Priority and Fairness answers 429 with Retry-After: 1. The cycle's retry waits
    that long (its own back-off here would retry after 0.05 s) and then converges."""
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        cluster.add_fault(
            Rule(method="PATCH", path_part="/deployments/hello", status=429, retry_after=1)
        )
        mark = s.rig.mark()
        (s.directory / GREET).write_text(node_code("after the throttle"))
        done = await cycle_of(s.rig, mark, wanted(s).content_hash)
        assert done.outcome == "ready"
        retried = s.rig.of(events.Retrying, mark)
        assert retried, [type(e).__name__ for e in s.rig.events[mark:]]
        assert retried[0].delay_s >= 1.0, retried


async def test_a_failed_service_apply_during_a_version_bump_still_rolls_out(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        before = await replica_sets(kube)
        cluster.add_fault(Rule(method="PATCH", path_part="/services/hello", status=500))
        mark = s.rig.mark()
        workflow = s.directory / "workflow.yaml"
        workflow.write_text(workflow.read_text().replace('"1.0"', '"1.1"'))
        (s.directory / GREET).write_text(node_code("v1.1"))
        done = await cycle_of(s.rig, mark, wanted(s).content_hash)
        # The Deployment's apply runs beside the Service's: the failed attempt may already
        # have rolled it out, and when that rollout is done before the retry (seen on the
        # real control plane under load), the retry finds the new pod serving ("applied").
        assert done.outcome in ("ready", "applied")
        await assert_converged(s, kube, "v1.1", before)


async def test_the_api_server_down_right_after_the_config_map_write(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        before = await replica_sets(kube)
        cluster.add_fault(Rule(status=503, count=10_000, after=("PATCH", "/configmaps/hello-code")))
        mark = s.rig.mark()
        (s.directory / GREET).write_text(node_code("through the outage"))
        await s.rig.wait_for(events.Retrying, since=mark)
        await s.rig.wait_for(events.Retrying, lambda e: e.attempt >= 3, mark)
        cluster.clear_faults()  # the API server is back
        done = await cycle_of(s.rig, mark, wanted(s).content_hash)
        assert done.outcome == "ready"
        await assert_converged(s, kube, "through the outage", before)


@image_from_files("a bad image in base-image.txt")
async def test_reverting_a_bad_image_while_editing_code_runs_the_new_code(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """The revert makes the template equal to an older one but for the code hash: a new
    ReplicaSet runs the new code (the old pod is not taken for it)."""
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        old_pod = s.rig.loop.current_pod
        image_file = s.directory / ".pipedreamer" / "base-image.txt"
        image_file.parent.mkdir()
        mark = s.rig.mark()
        image_file.write_text("registry.invalid/nope:1\n")
        failed = await s.rig.cycle_done(mark)
        assert failed.outcome == "failed"
        before = await replica_sets(kube)
        mark = s.rig.mark()
        image_file.unlink()
        (s.directory / GREET).write_text(node_code("reverted and edited"))
        done = await cycle_of(s.rig, mark, wanted(s).content_hash)
        assert done.outcome == "ready"
        assert s.rig.loop.current_pod != old_pod
        await assert_converged(s, kube, "reverted and edited", before)


async def test_a_config_map_deleted_behind_pdwatch_is_restored_without_a_rollout(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    kube = Kube(api_client, namespace)
    async with session(tmp_path, kube) as s:
        assert s.rig is not None
        await rollout_complete(kube, "hello")  # the Deployment's own status says so too
        before = await replica_sets(kube)
        await kube.delete("ConfigMap", "hello-code")
        mark = s.rig.mark()
        touch(s.directory / GREET)()
        done = await s.rig.cycle_done(mark)
        assert done.outcome == "applied"
        (applied,) = s.rig.of(events.Applied, mark)
        assert applied.objects == ("ConfigMap/hello-code",)
        assert await kube.get("ConfigMap", "hello-code") is not None
        assert await replica_sets(kube) == before  # the pod already runs this code


async def test_a_change_by_someone_else_during_the_rollout_supersedes_it(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """`kubectl set env` while pdwatch waits for its new pod: the rollout is said to be
    superseded, by whom, at once (not blamed on readiness after the timeout), and what
    replaced it is followed (issue 24 §7)."""
    apps = client.AppsV1Api(api_client)
    async with running_loop(tmp_path, Kube(api_client, namespace), rollout_timeout=60) as rig:
        await rig.cycle_done()
        mark = rig.mark()
        (rig.directory / "nodes" / "greet.ts").write_text(STUCK_AT_LOAD)
        await rig.wait_for(events.PodProgress, lambda e: e.step == "created", mark)
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": "engine", "env": [{"name": "X", "value": "1"}]}]
                    }
                }
            }
        }
        await asyncio.to_thread(
            apps.patch_namespaced_deployment, "hello", namespace, patch, field_manager="kubectl-set"
        )
        done = await rig.cycle_done(mark, timeout=20)
        assert done.outcome == "superseded", rig.events[mark:]
        said = [e.message for e in rig.of(events.Warning, mark)]
        assert any("changed by kubectl-set during the rollout" in m for m in said), said
        assert not rig.of(events.RolloutFailed, mark)
        await rig.wait_for(events.CycleStarted, lambda e: "kubectl-set" in e.reason, mark)
