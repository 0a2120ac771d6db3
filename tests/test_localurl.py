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
from devloop.sim import EmbeddedCluster
from tests.looprig import EXAMPLES, Rig
from tests.target import limited_user
from tests.test_formats import catalog_workflow

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
    url = LocalUrl(rig.loop.route)
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
    url = LocalUrl(rig.loop.route)
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


async def test_the_url_through_an_api_server_outage(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """The API server gone while a save waits to deploy: the URL answers 503 with the reason
    at once (never hangs); when it is back, the save rolls out and the URL serves it. The
    loop's own URL (`url_port`), as the daemon runs it."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / GREET).write_text(versioned(1))
    rig = Rig(
        directory,
        Kube(api_client, namespace),
        debounce_ms=20,
        url_port=0,
        retry_initial_s=0.2,
        retry_max_s=1.0,
    )
    task = asyncio.create_task(rig.loop.run())
    try:
        base = (await rig.wait_for(events.Serving)).url
        assert (await rig.cycle_done()).outcome == "ready"
        served = rig.loop.current_pod
        # a bound on a hang (none is expected), not a performance figure
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            mark = rig.mark()
            await asyncio.to_thread(cluster.stop_server)
            (directory / GREET).write_text(versioned(2))
            # down until the loop's retries have waited 5 s in all (0.2, 0.4, 0.8, then 1 s)
            await rig.wait_for(
                events.Retrying,
                lambda e: sum(r.delay_s for r in rig.of(events.Retrying, mark)) >= 5,
                since=mark,
            )
            async with http.post(f"{base}/run", json={}) as answer:
                assert answer.status == 503
                text = await answer.text()
                assert text.count("\n") == 1  # one line of JSON
                reason = json.loads(text)["error"]
                assert reason.startswith(f"pod {served} could not be reached"), reason
            await asyncio.to_thread(cluster.start_server)
            assert (await rig.cycle_done(mark, timeout=60)).outcome == "ready"
            assert rig.loop.current_pod != served
            async with http.post(f"{base}/run", json={}) as answer:
                assert answer.status == 200, await answer.text()
                assert (await answer.json())["outputs"]["greet"] == {"version": 2}
    finally:
        rig.loop.quit()
        await task


async def test_the_url_keeps_the_served_pod_while_paused(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / GREET).write_text(versioned(1))
    rig = Rig(directory, Kube(api_client, namespace), debounce_ms=20, url_port=0)
    task = asyncio.create_task(rig.loop.run())
    try:
        base = (await rig.wait_for(events.Serving)).url
        assert (await rig.cycle_done()).outcome == "ready"
        rig.loop.pause()
        mark = rig.mark()
        (directory / GREET).write_text(versioned(2))
        await rig.wait_for(events.LoopState, lambda e: e.detail.startswith("1 changed file"), mark)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/run", json={}) as answer:
                assert (await answer.json())["outputs"]["greet"] == {"version": 1}
            rig.loop.resume()
            assert (await rig.cycle_done(mark)).outcome == "ready"
            async with http.post(f"{base}/run", json={}) as answer:
                assert (await answer.json())["outputs"]["greet"] == {"version": 2}
    finally:
        rig.loop.quit()
        await task


async def test_t_sends_to_the_pod_the_url_serves(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """`t` (trigger_run) goes the URL's way: to the pod being served, none before one is."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / GREET).write_text(versioned(3))
    rig = Rig(directory, Kube(api_client, namespace), debounce_ms=20, url_port=None)
    early = await rig.loop.trigger_run({})
    assert (early.status, early.body) == (0, "no pod of the workflow is Ready yet")
    task = asyncio.create_task(rig.loop.run())
    try:
        assert (await rig.cycle_done()).outcome == "ready"
        result = await rig.loop.trigger_run({})
        assert result.status == 200
        assert isinstance(result.body, dict) and result.body["outputs"]["greet"] == {"version": 3}
        assert not rig.of(events.Serving)  # no URL asked for; `t` works without it
    finally:
        rig.loop.quit()
        await task


async def test_w_sends_a_signed_delivery_that_the_engine_matches_and_runs(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    """The catalog workflow's GitHub trigger (event push) gets a delivery signed with its
    shared webhook_secret: the real engine checks the signature, matches the trigger and
    runs the workflow; a wrong signature sent to the URL is refused by the engine."""
    directory = catalog_workflow(tmp_path)
    rig = Rig(directory, Kube(api_client, namespace), debounce_ms=20, url_port=0)
    task = asyncio.create_task(rig.loop.run())
    try:
        base = (await rig.wait_for(events.Serving)).url
        assert (await rig.cycle_done(timeout=60)).outcome == "ready"
        mark = rig.mark()
        sent = await rig.loop.send_webhook()
        assert sent.what == "webhook push (signed)"
        assert sent.status == 200, sent.body
        assert isinstance(sent.body, dict)
        assert sent.body["ok"] is True and sent.body["matched"] is True
        await rig.wait_for(events.LogLine, lambda e: "fetching" in e.text, since=mark)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/webhook/github",
                data=b"{}",
                headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"},
            ) as forged,
        ):
            assert (forged.status, await forged.json()) == (401, {"error": "Invalid signature"})
    finally:
        rig.loop.quit()
        await task


async def test_w_on_a_workflow_without_a_webhook_endpoint_says_why(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    rig = Rig(directory, Kube(api_client, namespace), debounce_ms=20)
    assert (await rig.loop.send_webhook()).body == "nothing deployed yet"
    task = asyncio.create_task(rig.loop.run())
    try:
        assert (await rig.cycle_done()).outcome == "ready"
        result = await rig.loop.send_webhook()
        assert (result.status, result.what) == (0, "webhook")
        assert result.body == "the workflow has no webhook trigger (t runs it: POST /run)"
    finally:
        rig.loop.quit()
        await task


async def test_a_cluster_refusing_the_pod_proxy_is_said_by_the_url_and_t(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """The deploy needs no pod proxy: it goes on; the URL and `t` say why they cannot."""
    cluster.forbid("create", "pods/proxy")
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    rig = Rig(directory, Kube(api_client, namespace), debounce_ms=20, url_port=0)
    task = asyncio.create_task(rig.loop.run())
    try:
        base = (await rig.wait_for(events.Serving)).url
        assert (await rig.cycle_done()).outcome == "ready"
        pod = rig.loop.current_pod
        # the API server's words (a long one is cut at 400 characters, as every message)
        said = (
            "the cluster refuses pdwatch the pod proxy (create pods/proxy in namespace "
            f'{namespace}): pods "{pod}:8080" is forbidden: User "{limited_user(namespace)}" '
            "cannot create resource"
        )
        result = await rig.loop.trigger_run({})
        assert result.status == 0 and result.body.startswith(said), result.body
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/run", json={}) as answer:
                assert answer.status == 503
                assert (await answer.json())["error"] == result.body
            async with http.get(f"{base}/health") as health:  # GET is "get pods/proxy"
                assert health.status == 200
    finally:
        rig.loop.quit()
        await task
