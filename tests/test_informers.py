"""The session's shared watches: what the cache takes, what subscribers are told, and that
a save opens no watch (tables here; the deploy, rollout and monitor tests run on them)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop import events
from devloop.kube import informers
from devloop.kube.client import Kube
from devloop.kube.errors import Forbidden
from devloop.kube.informers import Informer, carries, newer, version
from tests import target
from tests.helpers import node_code
from tests.looprig import EXAMPLES, Rig


def obj(name: str, rv: str, uid: str = "u1", **labels: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "uid": uid, "resourceVersion": rv, "labels": labels},
    }


@pytest.mark.parametrize(
    ("candidate", "cached", "takes"),
    [
        (obj("a", "5"), None, True),  # first sight
        (obj("a", "6"), obj("a", "5"), True),  # later
        (obj("a", "5"), obj("a", "5"), True),  # the watch's echo of pdwatch's own write
        (obj("a", "4"), obj("a", "5"), False),  # older than pdwatch's recorded write
        (obj("a", "4", uid="u2"), obj("a", "5"), True),  # made again: another object
        (obj("a", "x"), obj("a", "5"), False),  # not a number: never replaces a number
    ],
)
def test_what_replaces_a_cached_object(
    candidate: dict[str, Any], cached: dict[str, Any] | None, takes: bool
) -> None:
    assert newer(candidate, cached) is takes


def test_versions_and_labels() -> None:
    assert version(obj("a", "12")) == 12
    assert version({"metadata": {}}) == -1
    assert carries(obj("a", "1", app="x", tier="web"), {"app": "x"})
    assert not carries(obj("a", "1", app="x"), {"app": "x", "tier": "web"})
    assert carries(obj("a", "1"), {})


def informer() -> Informer:
    """An informer fed by hand (its own watch finds no server: it keeps retrying, quietly,
    until the test's loop ends)."""
    return Informer(Kube(client.Configuration(host="http://127.0.0.1:9"), "default"), "Pod")


async def test_the_cache_keeps_the_newest_and_subscribers_hear_only_what_it_took() -> None:
    pods = informer()
    pods._take("ADDED", obj("a", "1", app="x"))
    pods._take("ADDED", obj("b", "2", app="y"))
    pods._take("SYNCED", {"names": ["a", "b"]})
    changes = await pods.subscribe(lambda o: carries(o, {"app": "x"}))
    pods.record(obj("a", "5", app="x"))  # pdwatch's own write
    pods._take("MODIFIED", obj("a", "3", app="x"))  # delivered late: older, not taken
    pods._take("MODIFIED", obj("b", "6", app="y"))  # not this subscriber's
    pods._take("DELETED", obj("a", "7", app="x"))
    told = [changes.queue.get_nowait() for _ in range(changes.queue.qsize())]
    assert [(kind, o.get("metadata", {}).get("resourceVersion")) for kind, o in told] == [
        ("ADDED", "1"),  # replayed, as a list gives it
        ("SYNCED", None),  # then what the list held
        ("MODIFIED", "5"),
        ("DELETED", "7"),
    ]
    assert told[1][1] == {"names": ["a", "b"]}
    assert list(pods.objects) == ["b"] and pods.newest == 7


async def test_a_relist_drops_what_vanished_and_says_it_was_deleted() -> None:
    pods = informer()
    pods._take("ADDED", obj("a", "1"))
    pods._take("ADDED", obj("b", "2"))
    pods._take("SYNCED", {"names": ["a", "b"]})
    changes = await pods.subscribe(replay=False)
    pods._take("ADDED", obj("a", "9"))  # the relist after a new server: b is gone
    pods._take("SYNCED", {"names": ["a"]})
    told = [changes.queue.get_nowait() for _ in range(changes.queue.qsize())]
    assert [(kind, o.get("metadata", {}).get("name")) for kind, o in told] == [
        ("ADDED", "a"),
        ("DELETED", "b"),
        ("SYNCED", None),
    ]
    assert set(pods.objects) == {"a"}


async def test_a_list_item_is_told_with_its_kind() -> None:
    """A list's items carry no kind (its watch's do): the cache adds it, or every cycle
    would see its objects as differing from what it renders."""
    pods = informer()
    pods._take("ADDED", {"metadata": {"name": "a", "uid": "u", "resourceVersion": "1"}})
    assert pods.objects["a"]["kind"] == "Pod" and pods.objects["a"]["apiVersion"] == "v1"


async def test_reached_waits_for_the_watch_to_deliver_a_version() -> None:
    pods = informer()
    waiting = asyncio.create_task(pods.reached("4"))
    pods._take("ADDED", obj("a", "3"))
    await asyncio.sleep(0)
    assert not waiting.done()
    pods._take("MODIFIED", obj("a", "4"))
    await asyncio.wait_for(waiting, 5)


async def test_a_lost_stream_makes_the_cache_stale_until_the_next_list() -> None:
    pods = informer()
    assert not pods.current
    pods._take("ADDED", obj("a", "1"))
    pods._take("SYNCED", {"names": ["a"]})
    assert pods.current
    changes = await pods.subscribe(replay=False)
    pods._take("RELIST", {})
    assert not pods.current and changes.queue.empty()  # nothing to tell anyone
    pods._take("SYNCED", {"names": ["a"]})
    assert pods.current


async def test_reads_go_to_the_server_while_the_cache_is_stale(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Seen: a cluster recreated empty at the same address; the Deployment's watch had
    listed the new one, the ConfigMaps' not yet, and the cycle took the old cluster's
    code ConfigMap from the cache for live: it applied none, and the new pod waited on a
    mount that never came. Between a lost stream and the next list, reads ask the server."""
    kube = Kube(api_client, namespace)
    shared = informers.of(kube)
    gone = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "pdwatch-never-made", "uid": "u", "resourceVersion": "1"},
    }
    fed = Informer(kube, "ConfigMap")  # fed by hand: its watch is never started
    shared.informers["ConfigMap"] = fed
    fed._take("ADDED", gone)
    fed._take("SYNCED", {"names": ["pdwatch-never-made"]})
    assert await shared.get("ConfigMap", "pdwatch-never-made") == gone  # the cache's word
    fed._take("RELIST", {})
    assert await shared.get("ConfigMap", "pdwatch-never-made") is None
    assert await shared.ours("ConfigMap", "pdwatch-never-made") is None
    assert await shared.items("ConfigMap", {"pdwatch-test": "none"}) == []
    made = {"metadata": {"name": "pdwatch-listed", "labels": {"pdwatch-test": "stale"}}}
    await asyncio.to_thread(
        client.CoreV1Api(api_client).create_namespaced_config_map, namespace, made
    )
    (listed,) = await shared.items("ConfigMap", {"pdwatch-test": "stale"})
    assert (listed["kind"], listed["metadata"]["name"]) == ("ConfigMap", "pdwatch-listed")
    assert ("get", "configmaps", "") in kube.operations
    assert ("list", "configmaps", "") in kube.operations


async def test_a_lost_stream_is_said_then_listed_afresh(
    api_client: client.ApiClient, namespace: str, cluster: Any
) -> None:
    """A watch cut (the server went away, and the one that answers now may be a new one):
    the stream says it is lost before it waits to try again, then lists afresh."""
    from devloop.kube.watching import watch_objects

    kube = Kube(api_client, namespace)
    core = client.CoreV1Api(api_client)
    marked = {"metadata": {"name": "pdwatch-watched", "labels": {"pdwatch-test": "lost"}}}
    stream = watch_objects(kube, "ConfigMap", "pdwatch-test=lost", synced=True)
    try:
        assert await anext(stream) == ("SYNCED", {"names": []})
        following = asyncio.ensure_future(anext(stream))
        await asyncio.to_thread(core.create_namespaced_config_map, namespace, marked)
        kind, seen = await asyncio.wait_for(following, 10)  # the watch is open: it told
        assert (kind, seen["metadata"]["name"]) == ("ADDED", "pdwatch-watched")
        cluster.drop_streams()
        assert await asyncio.wait_for(anext(stream), 10) == ("RELIST", {})
        kind, seen = await asyncio.wait_for(anext(stream), 10)
        assert (kind, seen["metadata"]["name"]) == ("ADDED", "pdwatch-watched")
        assert await asyncio.wait_for(anext(stream), 10) == (
            "SYNCED",
            {"names": ["pdwatch-watched"]},
        )
    finally:
        await stream.aclose()
        await kube.close()


async def test_a_refused_watch_is_said_to_its_subscribers_and_reads_ask_the_server(
    api_client: client.ApiClient, namespace: str, cluster: Any
) -> None:
    """A Role without `list secrets`: a subscriber is told the refusal; a read made only
    to prune falls back to reading the object by name."""
    cluster.forbid("list", "secrets")
    kube = Kube(api_client, namespace)
    shared = informers.of(kube)
    with pytest.raises(Forbidden):
        await shared.informer("Secret").subscribe()
    assert await shared.ours("Secret", "nothing-here") is None
    assert ("get", "secrets", "") in kube.operations
    await shared.stop()


COLLECTIONS = (
    "/configmaps",
    "/secrets",
    "/services",
    "/pods",
    "/events",
    "/deployments",
    "/replicasets",
    "/cronjobs",
    "/networkpolicies",
)


def request_log(cluster: Any) -> list[tuple[float, str, str, str]]:
    """Every request pdwatch sends from now on, as (time, method, path, query)."""
    log: list[tuple[float, str, str, str]] = []
    if target.REAL is None:
        cluster.request_log = log
    else:
        cluster.proxy.request_log = log
    return log


async def test_two_workflows_in_one_namespace_share_one_watch_each_and_a_save_opens_none(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, cluster: Any
) -> None:
    """Issue 27 §2: one set of watches for the session, shared by every workflow (one Kube
    per namespace, as the daemon makes them), and a save's requests are writes and the
    new pod's log, not lists and watches."""
    kube = Kube(api_client, namespace)
    rigs = []
    for name in ("first", "second"):
        directory = tmp_path / name
        shutil.copytree(EXAMPLES / "hello", directory)
        spec = directory / "workflow.yaml"
        spec.write_text(spec.read_text().replace("name: hello", f"name: {name}"))
        rigs.append(Rig(directory, kube, debounce_ms=20))
    log = request_log(cluster)
    tasks = [asyncio.create_task(rig.loop.run()) for rig in rigs]
    try:
        for rig in rigs:
            assert (await rig.cycle_done()).outcome == "ready", rig.events
            await rig.wait_for(events.Recorded)
        watches = sorted(path for _, _, path, query in log if "watch=true" in query)
        kinds = [path.rsplit("/", 1)[-1] for path in watches]
        assert len(kinds) == len(set(kinds)), watches  # one watch a kind, for both
        assert {"deployments", "replicasets", "pods", "events"} <= set(kinds)

        mark, since = rigs[0].mark(), len(log)
        code = rigs[0].directory / "nodes" / "greet.ts"
        code.write_text(node_code("a save"))
        assert (await rigs[0].cycle_done(mark)).outcome == "ready"
        await rigs[0].wait_for(events.Recorded, since=mark)
        saved = [(method, path, query) for _, method, path, query in log[since:]]
        # a collection's path ends with its plural; an object's with its name
        listed = [r for r in saved if r[0] == "GET" and r[1].endswith(COLLECTIONS)]
        assert listed == [], saved
        assert not [r for r in saved if "watch=true" in r[2]], saved
    finally:
        for rig in rigs:
            rig.loop.quit()
        await asyncio.wait(tasks, timeout=10)
        await informers.of(kube).stop()
