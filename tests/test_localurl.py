"""The local URL (devloop.localurl): one address that answers through every rollout, on
the cluster under test (issue 28)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import aiohttp
from kubernetes import client

from devloop import events
from devloop.kube.client import Kube
from devloop.localurl import LocalUrl
from tests.looprig import EXAMPLES, Rig

GREET = Path("nodes") / "greet.ts"


def versioned(version: int) -> str:
    """A node that answers which save it is."""
    return (
        f'console.log("v{version}");\n'
        f"export default async function run() {{\n  return {{ version: {version} }};\n}}\n"
    )


async def test_the_url_answers_through_rollouts_and_a_failed_one(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / GREET).write_text(versioned(0))
    kube = Kube(api_client, namespace)
    rig = Rig(directory, kube, debounce_ms=20)
    url = LocalUrl(kube, lambda: rig.loop.current_pod)
    base = await url.start()
    async with aiohttp.ClientSession() as http:
        # before any pod serves: 503 at once, with a reason
        async with http.get(f"{base}/health") as early:
            assert early.status == 503
            assert json.loads(await early.text()) == {
                "error": "no pod of the workflow is Ready yet"
            }
        task = asyncio.create_task(rig.loop.run())
        try:
            assert (await rig.cycle_done()).outcome == "ready"
            async with http.get(f"{base}/health") as health:
                assert (health.status, await health.json()) == (200, {"status": "ok"})
            # steady requests while five saves roll out: none fails, and each answer is
            # the served save's
            failures: list[str] = []
            versions: list[int] = []
            stop = asyncio.Event()

            async def steady() -> None:
                while not stop.is_set():
                    async with http.post(f"{base}/run", json={}) as answer:
                        text = await answer.text()
                        if answer.status != 200:
                            failures.append(f"{answer.status} {text}")
                        else:
                            versions.append(json.loads(text)["outputs"]["greet"]["version"])
                    await asyncio.sleep(0.05)  # the load's pace (20/s), not a wait for a state

            load = asyncio.create_task(steady())
            for version in range(1, 6):
                mark = rig.mark()
                (directory / GREET).write_text(versioned(version))
                assert (await rig.cycle_done(mark)).outcome == "ready"
                await rig.wait_for(
                    events.LogLine, lambda e, v=version: e.text == f"v{v}", since=mark
                )
            stop.set()
            await load
            assert not failures, failures
            assert versions == sorted(versions), versions  # never back to an older save
            async with http.post(f"{base}/run", json={}) as answer:
                assert (await answer.json())["outputs"]["greet"] == {"version": 5}
            # a failed rollout: the pod that serves keeps answering
            mark = rig.mark()
            (directory / GREET).write_text(
                'throw new Error("broken at load");\nexport default async () => ({});\n'
            )
            failed = await rig.wait_for(
                events.CycleFinished, lambda e: e.outcome == "failed", since=mark, timeout=60
            )
            assert failed.outcome == "failed"
            async with http.post(f"{base}/run", json={}) as answer:
                assert answer.status == 200
                assert (await answer.json())["outputs"]["greet"] == {"version": 5}
        finally:
            rig.loop.quit()
            await task
            await url.stop()


async def test_the_url_follows_a_pod_deleted_by_hand(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """The pod being served deleted with kubectl: its ReplicaSet's replacement serves, and
    a request sent at once is answered by it (sent again until the switch)."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / GREET).write_text(versioned(1))
    kube = Kube(api_client, namespace)
    rig = Rig(directory, kube, debounce_ms=20)
    url = LocalUrl(kube, lambda: rig.loop.current_pod)
    base = await url.start()
    task = asyncio.create_task(rig.loop.run())
    try:
        assert (await rig.cycle_done()).outcome == "ready"
        served = rig.loop.current_pod
        client.CoreV1Api(api_client).delete_namespaced_pod(served, namespace)
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{base}/run", json={}) as answer,
        ):
            text = await answer.text()
            assert answer.status == 200, text
            assert json.loads(text)["outputs"]["greet"] == {"version": 1}
        assert rig.loop.current_pod != served
    finally:
        rig.loop.quit()
        await task
        await url.stop()
