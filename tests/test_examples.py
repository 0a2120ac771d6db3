"""Every example deploys as it is, and reaches Ready on the cluster under test: what is
rendered is what runs, byte for byte (emoji, CRLF and tabs included), helpers mounted,
and the reference's later format honoured (deployment.namespace)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from kubernetes import client

from devloop.kube.client import Kube
from devloop.kube.deploy import RestartStamps, deploy_cycle
from devloop.render import Bundle, render
from devloop.sim import EmbeddedCluster
from tests.helpers import copy_example
from tests.processes import run_pdwatch
from tests.target import render_options

EXAMPLES = Path(__file__).parent.parent / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "workflow.yaml").exists())


@pytest.mark.parametrize("name", NAMES)
async def test_each_example_deploys_to_ready_byte_for_byte(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, name: str
) -> None:
    directory = copy_example(EXAMPLES, name, tmp_path)
    bundle = render(directory, render_options(namespace))
    assert isinstance(bundle, Bundle), bundle
    assert not [w for w in bundle.warnings if w.severity == "warning"], bundle.warnings
    kube = Kube(api_client, namespace)
    events_seen: list[object] = []
    result = await deploy_cycle(kube, bundle, events_seen.append, RestartStamps())
    assert result.ok, events_seen
    cm = await kube.get("ConfigMap", bundle.config_map["metadata"]["name"])
    assert cm is not None
    for file in bundle.files:
        on_disk = (directory / file.path).read_bytes().decode("utf-8")
        assert cm["data"][file.key] == on_disk, file.path


async def test_emoji_survive_to_the_engine(
    tmp_path: Path, api_client: client.ApiClient, namespace: str
) -> None:
    directory = tmp_path / "emoji-report"
    shutil.copytree(EXAMPLES / "emoji-report", directory)
    bundle = render(directory, render_options(namespace))
    assert isinstance(bundle, Bundle)
    kube = Kube(api_client, namespace)
    result = await deploy_cycle(kube, bundle, lambda e: None, RestartStamps())
    assert result.ok and result.rollout is not None
    logs = await kube.pod_log(result.rollout.pod)
    assert "report node loaded 📝" in logs.splitlines()


def test_deployment_namespace_is_where_it_deploys_without_n(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str
) -> None:
    directory = copy_example(EXAMPLES, "github-digest", tmp_path)
    wanted = f"{namespace}-digest"  # the test's own (tests/faultproxy.py)
    spec = directory / "workflow.yaml"
    spec.write_text(spec.read_text().replace("namespace: digest", f"namespace: {wanted}"))
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc")
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=cluster.url)))
    try:
        proc = run_pdwatch(directory, "--once", "--kubeconfig", kubeconfig, "--create-namespace")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"namespace {wanted}" in proc.stdout
        apps = client.AppsV1Api(core.api_client)
        assert [d.metadata.name for d in apps.list_namespaced_deployment(wanted).items] == [
            "github-digest"
        ]
    finally:
        with contextlib.suppress(client.ApiException):
            core.delete_namespace(wanted)


@pytest.mark.parametrize("name", NAMES)
async def test_each_example_runs_for_real(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, name: str
) -> None:
    """Each example's nodes run in the engine when POST /run reaches it through the
    Service, as `t` sends it: the engine's answer, and pdwatch's summary of it. An outside
    call fails here as it fails from a pod without a route to the host (or succeeds where
    the machine has one): when it fails, pdwatch says it was an outside call."""
    from devloop.runresult import summarize

    directory = copy_example(EXAMPLES, name, tmp_path)
    bundle = render(directory, render_options(namespace))
    assert isinstance(bundle, Bundle), bundle
    kube = Kube(api_client, namespace)
    result = await deploy_cycle(kube, bundle, lambda e: None, RestartStamps())
    assert result.ok
    name_of = bundle.deployment["metadata"]["name"]
    status, body = await kube.proxy_post(name_of, 8080, "run", {})
    assert isinstance(body, dict) and set(body) == {"success", "outputs", "errors", "timing"}
    assert status == (200 if body["success"] else 500), (status, body)
    ran = set(body["outputs"]) | set(body["errors"])
    assert ran and ran <= set(body["timing"]["nodeTimings"]), body
    summary = summarize(status, body)
    for node, message in body["errors"].items():
        line = summary.index(f"{node}: {message}")
        if message == "fetch failed":
            assert summary[line + 1].startswith("  → an outside call (fetch) failed"), summary


def test_embedded_makes_the_namespace_the_workflow_names(tmp_path: Path) -> None:
    """`--embedded` is pdwatch's own cluster, made for the run: a workflow that names
    `deployment.namespace` deploys there, where it stopped at "namespace not found" and
    suggested a kubectl create for a cluster no one can reach."""
    directory = copy_example(EXAMPLES, "github-digest", tmp_path)
    proc = run_pdwatch(directory, "--once", "--embedded")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "namespace digest" in proc.stdout, proc.stdout
    assert "not found" not in proc.stdout + proc.stderr


def test_the_readme_sets_up_the_tentacular_example_as_the_catalog_says(tmp_path: Path) -> None:
    """The README's commands for `examples/github-digest` (the catalog's steps: copy
    .secrets.yaml.example, put the shared values in the repository's .secrets/), run in a
    repository like a clone of this one; then the deploy they lead to, `--once` in place of
    the terminal UI: the Tentacular format, and the `$shared` values in the Secret."""
    import base64
    import re
    import subprocess

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(cp examples/github-digest/.*?)```", readme, re.DOTALL)
    assert block is not None
    setup, run = block.group(1).strip().splitlines()[:-1], block.group(1).strip().splitlines()[-1]
    assert run.startswith("python3 dev.py run examples/github-digest")
    (tmp_path / ".git").mkdir()
    shutil.copytree(EXAMPLES / "github-digest", tmp_path / "examples" / "github-digest")
    for line in setup:
        subprocess.run(["bash", "-ec", line], cwd=tmp_path, check=True)
    directory = tmp_path / "examples" / "github-digest"
    proc = run_pdwatch(directory, "--render")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# format: tentacular (workflow.yaml has a contract)")
    bundle = render(directory)
    assert isinstance(bundle, Bundle) and bundle.secret is not None, bundle
    assert {k: base64.b64decode(v) for k, v in bundle.secret["data"].items()} == {
        "github": b'{"token":"none","webhook_secret":"none"}',
        "slack": b'{"webhook_url":"none"}',
    }
    proc = run_pdwatch(directory, "--once", "--embedded")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "format tentacular (workflow.yaml has a contract)" in proc.stdout
    assert "namespace digest" in proc.stdout


@pytest.mark.parametrize(
    ("node", "code"),
    [("return { hello: input.name };", 0), ('throw new Error("no greeting today");', 4)],
)
def test_once_run_reaches_the_engine_and_exits_by_the_answer(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str, node: str, code: int
) -> None:
    """`--once --run JSON`: deployed, then POST /run through the Service as `t` sends it:
    the engine's answer and pdwatch's summary printed; exit 0 when the run succeeds, 4
    when it fails (issue 25 §2)."""
    directory = copy_example(EXAMPLES, "hello", tmp_path)
    (directory / "nodes" / "greet.ts").write_text(
        f"export default async function run(ctx: any, input: any) {{\n  {node}\n}}\n"
    )
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kc", namespace=namespace)
    proc = run_pdwatch(directory, "--once", "--run", '{"name": "kind"}', "--kubeconfig", kubeconfig)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if code == 0:
        assert 'run → 200: {"success": true, "outputs": {"greet": {"hello": "kind"}}' in (
            proc.stdout
        )
        assert "ran 1 node" in proc.stdout and "all succeeded" in proc.stdout
    else:
        assert "run → 500" in proc.stdout
        assert "greet: no greeting today" in proc.stdout


def test_run_needs_once_and_json() -> None:
    for args, said in (
        (["--run"], "--run runs the workflow once deployed"),
        (["--once", "--run", "{nope"], "is not JSON"),
    ):
        proc = run_pdwatch(EXAMPLES / "hello", *args)
        assert proc.returncode == 2 and said in proc.stderr, proc.stderr
