"""The README's "Writing a workflow" section is true: its example, written out exactly as
the README shows it, renders without a warning, deploys with the command the README
gives, and runs; and its key table names every key pdwatch's parser knows."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import pytest
from kubernetes import client

from devloop import workflow
from devloop.kube.client import Kube
from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster
from tests.kubewait import wait_for_log_line
from tests.processes import run_pdwatch

README = Path(__file__).parent.parent / "README.md"
EXAMPLE_RE = re.compile(r"<!-- readme-example: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def write_example(into: Path) -> dict[str, str]:
    """Every file the section shows, written under `into`; returns path → text."""
    files = dict(EXAMPLE_RE.findall(section("Writing a workflow")))
    for path, text in files.items():
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return files


def test_the_section_shows_a_whole_workflow(tmp_path: Path) -> None:
    files = write_example(tmp_path)
    assert "greeter/workflow.yaml" in files
    assert {p for p in files if p.endswith(".ts")} == {
        "greeter/nodes/pick-name.ts",
        "greeter/nodes/greet.ts",
        "greeter/nodes/lib/text.ts",
    }
    bundle = render(tmp_path / "greeter", RenderOptions("default"))
    assert isinstance(bundle, Bundle), bundle
    assert bundle.warnings == ()


def test_the_key_table_names_every_key_the_parser_knows() -> None:
    text = section("Writing a workflow")
    table = {m for m in re.findall(r"^\| `([a-z]+)`", text, re.MULTILINE)}
    table |= set(re.findall(r"`([a-z]+)`, `([a-z]+)`, `([a-z]+)` \|", text)[0])
    assert table == set(workflow.TOP_KEYS)
    for kind in workflow.TRIGGER_TYPES:
        assert f"`{kind}`" in text
    for key in (*workflow.TRIGGER_KEYS, *workflow.NODE_KEYS, *workflow.EDGE_KEYS):
        assert f"`{key}`" in text or f"{{{key}" in text or f"{key}:" in text, key


async def test_the_example_deploys_as_the_readme_says_and_runs(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    files = write_example(tmp_path)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    command = re.search(r"`pdwatch\s+(\./greeter --once)`", section("Writing a workflow"))
    assert command is not None
    proc = run_pdwatch(*command.group(1).split(), "--kubeconfig", kubeconfig, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Good morning" not in proc.stdout + proc.stderr

    core = client.CoreV1Api(api_client)
    code = core.read_namespaced_config_map("greeter-code", namespace).data
    for path, text in files.items():
        if path.endswith((".ts", "workflow.yaml")):
            key = path.removeprefix("greeter/").replace("/", "__")
            assert code[key] == text, path
    assert ".secrets.yaml" not in code and all("Good morning" not in v for v in code.values())
    secret = core.read_namespaced_secret("greeter-secrets", namespace).data
    assert base64.b64decode(secret["greeting"]) == b"Good morning"
    batch = client.BatchV1Api(api_client)
    (cron,) = batch.list_namespaced_cron_job(namespace).items
    assert cron.spec.schedule == "0 9 * * *"

    status, body = await Kube(api_client, namespace).proxy_post(
        "greeter", 8080, "run", {"name": "README"}
    )
    # the nodes really ran: the greeting their code computes, from the Secret's value
    assert status == 200 and isinstance(body, dict), (status, body)
    assert body["success"] is True and body["errors"] == {}, body
    assert body["outputs"]["greet"] == {"message": "Good morning, README!"}, body
    assert body["outputs"]["pick-name"] == {"name": "README"}, body
    (pod,) = [
        p
        for p in core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/name=greeter"
        ).items
        if not p.metadata.deletion_timestamp
    ]
    line = wait_for_log_line(api_client, namespace, pod.metadata.name, "[pick-name] INFO")
    assert line == "[pick-name] INFO picked README (trigger: manual)"


@pytest.mark.parametrize(
    ("given", "expected_tail"),
    [
        ([], ["--embedded"]),
        (["./mine"], ["./mine", "--embedded"]),
        (["./mine", "--no-tui"], ["./mine", "--no-tui", "--embedded"]),
        (["./mine", "--kubeconfig", "k"], ["./mine", "--kubeconfig", "k"]),
        (["./mine", "--context=kind-dev"], ["./mine", "--context=kind-dev"]),
        (["./mine", "--embedded"], ["./mine", "--embedded"]),
    ],
)
def test_dev_py_run_keeps_the_embedded_default(given: list[str], expected_tail: list[str]) -> None:
    sys.path.insert(0, str(README.parent))
    try:
        import dev
    finally:
        sys.path.pop(0)
    args = dev.pdwatch_args(given)
    assert args[-len(expected_tail) :] == expected_tail
    if not given:
        assert Path(args[0]) == README.parent / "examples" / "uptime-prober"
