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
from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster, Rule
from tests.looprig import Rig

EXAMPLES = Path(__file__).parent.parent / "examples"
GREET = Path("nodes") / "greet.ts"
OK = ("ready", "unchanged", "applied")


def fast_settings() -> dict[str, Any]:
    return {"retry_initial_s": 0.05, "retry_max_s": 0.2, "debounce_ms": 20}


class Session:
    """A pdwatch that can be killed and started again against the same cluster."""

    def __init__(self, directory: Path, api_client: client.ApiClient, timeout_s: float) -> None:
        self.directory = directory
        self.api_client = api_client
        self.timeout_s = timeout_s
        self.rig: Rig | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> events.CycleFinished:
        kube = Kube(self.api_client, "default")
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
async def session(
    tmp_path: Path, api_client: client.ApiClient, timeout_s: float = 15
) -> AsyncIterator[Session]:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    s = Session(directory, api_client, timeout_s)
    first = await s.start()
    assert first.outcome == "ready"
    try:
        yield s
    finally:
        await s.stop()


def wanted(directory: Path) -> Bundle:
    result = render(directory, RenderOptions("default"))
    assert isinstance(result, Bundle), result
    return result


async def replica_sets(kube: Kube) -> set[str]:
    listed = await kube.list("ReplicaSet", label_selector="app.kubernetes.io/name=hello")
    return {rs["metadata"]["name"] for rs in listed["items"]}


async def cycle_of(rig: Rig, mark: int, content_hash: str) -> events.CycleFinished:
    """The end of the first cycle after `mark` that rendered `content_hash` (a cycle
    started before a save may still end after it, with the older content)."""

    def rendered_it(done: events.CycleFinished) -> bool:
        started = next(
            i
            for i, e in enumerate(rig.events)
            if isinstance(e, events.CycleStarted) and e.cycle == done.cycle
        )
        ended = rig.events.index(done, started)
        return any(
            isinstance(e, events.Rendered) and e.content_hash == content_hash
            for e in rig.events[started:ended]
        )

    return await rig.wait_for(events.CycleFinished, rendered_it, since=mark, timeout=30)


async def settled(s: Session, mark: int, touch: Callable[[], None]) -> events.CycleFinished:
    """The cycle of the latest save; a failed one is followed by a touch (nothing changes
    on disk), whose cycle must finish what the failed one left."""
    assert s.rig is not None
    target = wanted(s.directory).content_hash
    done = await cycle_of(s.rig, mark, target)
    if done.outcome not in OK:
        mark = s.rig.mark()
        touch()
        done = await cycle_of(s.rig, mark, target)
    return done


async def assert_converged(s: Session, kube: Kube, marker: str, before: set[str]) -> None:
    assert s.rig is not None
    bundle = wanted(s.directory)
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
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, mode: str
) -> None:
    kube = Kube(api_client, "default")
    async with session(tmp_path, api_client, timeout_s=0.5 if mode == "timeout" else 15) as s:
        assert s.rig is not None
        path = s.directory / GREET
        # How many requests a clean cycle makes, to fail each of them in turn.
        start, mark = cluster.request_count, s.rig.mark()
        path.write_text('console.log("clean");\n')
        assert (await s.rig.cycle_done(mark)).outcome == "ready"
        count = cluster.request_count - start
        assert count >= 5
        print(f"a clean cycle made {count} requests")
        for n in range(1, count + 1):
            marker = f"v{n}-{mode}"
            before = await replica_sets(kube)
            cluster.add_fault(MODES[mode](n))
            mark = s.rig.mark()
            path.write_text(f'console.log("{marker}");\n')
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
