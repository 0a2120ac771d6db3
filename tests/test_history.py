"""Deploy history and rollback: revisions recorded in the cluster beside the live code
ConfigMap, listed, compared, rolled back to (issue: 12 deploys keep 10; a rollback puts the
code back byte for byte and the new pod runs it; unknown revisions; history survives
pdwatch; --down leaves nothing)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from devloop import events, history
from devloop.kube import history as kube_history
from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster
from tests.processes import run_pdwatch
from tests.target import patience, render_options

EXAMPLES = Path(__file__).parent.parent / "examples"


def hello(tmp_path: Path) -> Path:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    return directory


def save(directory: Path, marker: str) -> None:
    (directory / "nodes" / "greet.ts").write_text(
        f'console.log("{marker}");\nexport default async function run() {{ return {{}}; }}\n'
    )


def bundle_of(directory: Path, namespace: str) -> Bundle:
    result = render(directory, render_options(namespace))
    assert isinstance(result, Bundle), result
    return result


async def deploy_and_record(kube: Kube, directory: Path, limit: int = 10) -> Bundle:
    bundle = bundle_of(directory, kube.namespace)
    result = await deploy_cycle(
        kube, bundle, lambda e: None, RestartStamps(), rollout_timeout=patience(20)
    )
    assert result.ok
    await kube_history.record(kube, bundle, limit)
    return bundle


def pdwatch(
    cluster: EmbeddedCluster, tmp_path: Path, directory: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    return run_pdwatch(directory, *args, "--kubeconfig", kubeconfig)


# --- the record, as pure decisions ----------------------------------------------------------


def code_map(data: dict[str, str]) -> dict[str, object]:
    labels = {"app.kubernetes.io/name": "wf", "app.kubernetes.io/version": "1.0"}
    return {"metadata": {"name": "wf-code", "namespace": "default", "labels": labels}, "data": data}


def stored(manifest: dict[str, object] | None) -> history.Revision:
    assert manifest is not None
    revision = history.parse(manifest)
    assert revision is not None
    return revision


def test_a_revision_records_the_code_what_changed_and_is_immutable() -> None:
    first = history.plan_record([], code_map({"a.ts": "1"}), "h1", "T1", 10)
    r1 = stored(first.create)
    assert (r1.number, r1.name, r1.content_hash, r1.changed) == (1, "wf-code-r1", "h1", ("a.ts",))
    assert first.create is not None and first.create["immutable"] is True
    labels = first.create["metadata"]["labels"]  # type: ignore[index]
    assert labels[history.HISTORY_LABEL] == "true" and labels["app.kubernetes.io/name"] == "wf"
    second = history.plan_record([r1], code_map({"a.ts": "1", "nodes__b.ts": "x"}), "h2", "T2", 10)
    assert stored(second.create).changed == ("nodes/b.ts",)


def test_a_change_of_thousands_of_files_fits_the_annotation_limit() -> None:
    """All annotations of an object share 256 KiB: 16,000 changed paths listed in full
    would be refused (issue 24 §5). The list is cut, and says how many it leaves out."""
    data = {f"nodes__generated__file{n:05d}.ts": "x" for n in range(16_000)}
    revision = history.plan_record([], code_map(data), "h1", "T", 10).create
    assert revision is not None
    annotations = revision["metadata"]["annotations"]  # type: ignore[index]
    total = sum(len(k) + len(v) for k, v in annotations.items())
    assert total < 256 * 1024
    parsed = stored(revision)
    assert parsed.changed_more > 0 and len(parsed.changed) + parsed.changed_more == 16_000
    assert parsed.changed_text.endswith(f" and {parsed.changed_more:,} more")


def test_code_already_recorded_is_not_recorded_again() -> None:
    r1 = stored(history.plan_record([], code_map({"a": "1"}), "h1", "T", 10).create)
    r2 = stored(history.plan_record([r1], code_map({"a": "2"}), "h2", "T", 10).create)
    assert history.plan_record([r2, r1], code_map({"a": "1"}), "h1", "T", 10).create is None


def test_the_oldest_go_beyond_the_limit() -> None:
    revisions: list[history.Revision] = []
    for n in range(1, 4):
        plan = history.plan_record(revisions, code_map({"a": str(n)}), f"h{n}", "T", 2)
        revisions = [stored(plan.create), *revisions]
        kept = {r.name for r in revisions} - set(plan.delete)
        revisions = [r for r in revisions if r.name in kept]
    assert [r.number for r in revisions] == [3, 2]


def test_the_table_marks_the_live_revision_and_says_when_there_is_none() -> None:
    assert history.table([], None) == [
        "no deploy history yet: it starts with the next deploy that reaches Ready"
    ]
    r1 = stored(history.plan_record([], code_map({"a": "1"}), "a" * 64, "T1", 10).create)
    lines = history.table([r1], "a" * 64)
    assert lines[1].startswith("*  1    T1")
    assert lines[-1] == "* live"


# --- against the embedded cluster -----------------------------------------------------------


async def test_twelve_deploys_keep_ten_revisions(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    kube, directory = Kube(api_client, namespace), hello(tmp_path)
    for n in range(12):
        save(directory, f"v{n}")
        await deploy_and_record(kube, directory)
    revisions = await kube_history.load(kube, "hello")
    assert [r.number for r in revisions] == list(range(12, 2, -1))
    live = await kube_history.live_hash(kube, "hello")
    assert history.live_revision(revisions, live) == revisions[0]
    # the live ConfigMap is the one seed 000 specifies, untouched by the history
    core = client.CoreV1Api(api_client)
    assert (
        core.read_namespaced_config_map("hello-code", namespace)
        .data["nodes__greet.ts"]
        .startswith('console.log("v11")')
    )


async def test_rollback_restores_the_code_and_the_pod_runs_it(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    kube, directory = Kube(api_client, namespace), hello(tmp_path)
    save(directory, "old code")
    first = await deploy_and_record(kube, directory)
    save(directory, "new code")
    await deploy_and_record(kube, directory)

    proc = pdwatch(cluster, tmp_path, directory, "--rollback", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "revision 1 is live; the local files differ from it" in proc.stdout
    core = client.CoreV1Api(api_client)
    assert core.read_namespaced_config_map("hello-code", namespace).data == first.config_map["data"]
    (pod,) = [
        p
        for p in core.list_namespaced_pod(namespace).items
        if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]
    assert "old code" in core.read_namespaced_pod_log(pod.metadata.name, namespace)

    listing = pdwatch(cluster, tmp_path, directory, "--history")
    assert listing.returncode == 0
    rows = [line for line in listing.stdout.splitlines() if line[:1] in ("*", " ")]
    assert any(line.startswith("*  1 ") for line in rows), listing.stdout
    assert len(await kube_history.load(kube, "hello")) == 2  # a rollback records nothing


async def test_rollback_to_a_revision_that_is_not_there(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    kube, directory = Kube(api_client, namespace), hello(tmp_path)
    await deploy_and_record(kube, directory)
    proc = pdwatch(cluster, tmp_path, directory, "--rollback", "7")
    assert proc.returncode == 2
    assert "no revision 7 in the deploy history (revisions: 1)" in proc.stdout + proc.stderr


def test_history_survives_pdwatch_and_compares_revisions(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    """Each command is its own process: the history lives in the cluster."""
    directory = hello(tmp_path)
    for marker in ("one", "two"):
        save(directory, marker)
        once = pdwatch(cluster, tmp_path, directory, "--once")
        assert once.returncode == 0, once.stdout + once.stderr
    listing = pdwatch(cluster, tmp_path, directory, "--history")
    assert listing.returncode == 0
    assert "nodes/greet.ts" in listing.stdout and "* live" in listing.stdout
    compared = pdwatch(cluster, tmp_path, directory, "--history", "--diff", "1", "2")
    assert compared.returncode == 0, compared.stderr
    assert '-console.log("one");' in compared.stdout and '+console.log("two");' in compared.stdout
    assert "--- r1/nodes/greet.ts" in compared.stdout
    # --rollback ends as --once does, with the first log lines of the pod it brought back
    # (issue 29 §7), and rolling back to the live revision is said to be pointless.
    back = pdwatch(cluster, tmp_path, directory, "--rollback", "1")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "one" in [line.split("] ", 1)[-1] for line in back.stdout.splitlines()], back.stdout
    again = pdwatch(cluster, tmp_path, directory, "--rollback", "1")
    assert again.returncode == 0
    assert (
        "revision 1 (" in again.stdout and "is live already: nothing to roll back" in again.stdout
    )
    assert "rolling back" not in again.stdout


def test_history_with_none_yet_says_so(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    proc = pdwatch(cluster, tmp_path, hello(tmp_path), "--history")
    assert proc.returncode == 0
    assert "no deploy history yet" in proc.stdout


def test_down_removes_the_history(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    directory = hello(tmp_path)
    assert pdwatch(cluster, tmp_path, directory, "--once").returncode == 0
    assert pdwatch(cluster, tmp_path, directory, "--down").returncode == 0
    left = client.CoreV1Api(api_client).list_namespaced_config_map(
        namespace, label_selector="app.kubernetes.io/name=hello"
    )
    assert left.items == []


@pytest.mark.parametrize("args", [["--diff", "1", "2"], ["--history-limit", "0"]])
def test_history_options_used_wrongly_are_usage_errors(tmp_path: Path, args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", str(hello(tmp_path)), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2


async def test_a_rollback_asked_for_during_a_deploy_waits_for_it(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """Single flight: the rollback's cycle starts after the running one has finished, and a
    save that came with it deploys after the rollback."""
    from tests.looprig import running_loop

    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        await rig.wait_for(events.Recorded, lambda e: e.revision == 1)
        original = (rig.directory / "nodes" / "greet.ts").read_text()
        mark = rig.mark()
        cluster.set_latency(0.2)  # the next cycle takes a while
        save(rig.directory, "slow deploy")
        await rig.wait_for(events.Applied, since=mark)  # that cycle is in flight
        rig.loop.rollback(1)
        rolled = await rig.wait_for(events.CycleStarted, lambda e: e.reason == "rollback r1", mark)
        cluster.set_latency(0)
        before = rig.events[: rig.events.index(rolled)]
        assert [e.outcome for e in before[mark:] if isinstance(e, events.CycleFinished)] == [
            "ready"
        ]
        done = await rig.wait_for(events.CycleFinished, lambda e: e.cycle == rolled.cycle, mark)
        assert done.outcome == "ready"
        live = client.CoreV1Api(api_client).read_namespaced_config_map("hello-code", namespace)
        assert live.data["nodes__greet.ts"] == original
