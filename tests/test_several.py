"""Several workflows in one session (issue 27 §3): `pdwatch DIR DIR…` and `pdwatch PARENT`,
one connection, a loop each with its own watch, rollout and local URL, plain lines
prefixed by the workflow's name; the one-shot commands over each."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import urllib.request
from pathlib import Path

from kubernetes import client

from devloop.sim import EmbeddedCluster
from tests.processes import Lines, run_pdwatch, start_pdwatch, stop

EXAMPLES = Path(__file__).parent.parent / "examples"


def named(parent: Path, name: str) -> Path:
    """A copy of the hello example deployed as `name`, whose node answers its name."""
    directory = parent / name
    shutil.copytree(EXAMPLES / "hello", directory)
    yaml = directory / "workflow.yaml"
    yaml.write_text(yaml.read_text().replace("name: hello", f"name: {name}"))
    (directory / "nodes" / "greet.ts").write_text(answering(name, 1))
    return directory


def answering(name: str, version: int) -> str:
    return (
        f'console.log("{name} v{version}");\n'
        "export default async function run() {\n"
        f'  return {{ who: "{name}", version: {version} }};\n}}\n'
    )


def post_run(url: str) -> dict[str, object]:
    request = urllib.request.Request(f"{url}/run", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    greet = body["outputs"]["greet"]
    assert isinstance(greet, dict)
    return greet


# --- on the cluster under test --------------------------------------------------------------


def test_a_session_of_two_workflows(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    """`pdwatch PARENT`: both deploy, each line says whose it is, a save redeploys only
    its workflow, each URL answers for its own, and --cleanup-on-exit removes both."""
    alpha = named(tmp_path / "family", "alpha")
    named(tmp_path / "family", "beta")
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(
        tmp_path / "family", "--kubeconfig", kubeconfig, "--no-tui", "--cleanup-on-exit"
    )
    try:
        lines = Lines(proc)
        urls = {}
        for _ in range(2):
            said = lines.until("the workflow answers at")
            found = re.search(r"(alpha|beta)\s+│ the workflow answers at (http://\S+)", said)
            assert found is not None, said
            urls[found[1]] = found[2]
        lines.until_all("alpha │ start → ", "beta  │ start → ", timeout=60)
        assert post_run(urls["alpha"]) == {"who": "alpha", "version": 1}
        assert post_run(urls["beta"]) == {"who": "beta", "version": 1}
        mark = len(lines.seen)
        (alpha / "nodes" / "greet.ts").write_text(answering("alpha", 2))
        lines.until("alpha │ nodes/greet.ts changed → ")
        assert post_run(urls["alpha"]) == {"who": "alpha", "version": 2}
        assert post_run(urls["beta"]) == {"who": "beta", "version": 1}
        beta_cycled = [
            line
            for line in lines.seen[mark:]
            if " beta  │ " in line and ("changed" in line or "applied" in line)
        ]
        assert not beta_cycled, beta_cycled
        proc.send_signal(signal.SIGINT)
        rest = lines.rest()
        assert proc.wait(timeout=30) == 0, "\n".join(rest)
        cleaned = [line for line in rest if "cleaned up: " in line]
        assert len(cleaned) == 2, rest
        assert any("Deployment/alpha," in line for line in cleaned), cleaned
        assert any("Deployment/beta," in line for line in cleaned), cleaned
    finally:
        stop(proc)


def in_namespace(directory: Path, namespace: str) -> Path:
    yaml = directory / "workflow.yaml"
    yaml.write_text(yaml.read_text() + f"deployment:\n  namespace: {namespace}\n")
    return directory


def test_one_name_in_two_namespaces_is_told_apart_by_its_directory(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str, api_client: client.ApiClient
) -> None:
    """Allowed (no clash), and each line says which of the two it is: the name alone
    would not (the TUI keyed its views by it, and the two shared one)."""
    spaces = (f"{namespace}-a", f"{namespace}-b")  # the test's own (tests/faultproxy.py)
    in_namespace(named(tmp_path / "team-a", "same"), spaces[0])
    in_namespace(named(tmp_path / "team-b", "same"), spaces[1])
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(
        tmp_path / "team-a" / "same",
        tmp_path / "team-b" / "same",
        "--kubeconfig",
        kubeconfig,
        "--no-tui",
        "--create-namespace",
    )
    try:
        lines = Lines(proc)
        lines.until_all(
            "same (team-a/same) │ start → ", "same (team-b/same) │ start → ", timeout=60
        )
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, "\n".join(lines.rest())
        core = client.CoreV1Api(api_client)
        for space in spaces:
            assert core.read_namespaced_service("same", space).metadata.name == "same"
    finally:
        stop(proc)
        for space in spaces:
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(api_client).delete_namespace(space)


def test_one_name_twice_is_refused_before_anything_deploys(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    named(tmp_path / "one", "same")
    named(tmp_path / "two", "same")
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    done = run_pdwatch(tmp_path / "one", tmp_path / "two", "--kubeconfig", kubeconfig, "--no-tui")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "both deploy workflow 'same' to namespace" in done.stdout
    assert "applied" not in done.stdout


def test_once_render_and_down_over_several(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    one = named(tmp_path, "one")
    two = named(tmp_path, "two")
    rendered = run_pdwatch(one, two, "--render")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stderr.splitlines() == [f"== {one}", f"== {two}"]
    names = re.findall(r"^kind: Deployment\n(?:.*\n)*?  name: (\w+)$", rendered.stdout, re.M)
    assert names == ["one", "two"]
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    once = run_pdwatch(one, two, "--once", "--kubeconfig", kubeconfig)
    assert once.returncode == 0, once.stdout + once.stderr
    assert once.stdout.count("Ready in") >= 2 and f"== {two}" in once.stdout
    down = run_pdwatch(one, two, "--down", "--kubeconfig", kubeconfig)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "deleted Deployment/one" in down.stdout and "deleted Deployment/two" in down.stdout
    refused = run_pdwatch(one, two, "--history", "--kubeconfig", kubeconfig)
    assert refused.returncode == 2
    assert "--history and --rollback take one workflow" in refused.stderr


def test_workflows_of_a_session_create_their_namespace_side_by_side(
    tmp_path: Path, cluster: EmbeddedCluster, namespace: str, api_client: client.ApiClient
) -> None:
    """Each loop's cluster check creates a missing namespace; the others then found it made
    ("already exists") and refused to deploy (seen by the five-workflow benchmark)."""
    for name in ("one", "two", "three"):
        named(tmp_path / "family", name)
    fresh = f"{namespace}-fresh"  # the test's own (tests/faultproxy.py)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(
        tmp_path / "family",
        "--kubeconfig",
        kubeconfig,
        "--no-tui",
        "-n",
        fresh,
        "--create-namespace",
    )
    try:
        lines = Lines(proc)
        lines.until_all("one   │ start → ", "two   │ start → ", "three │ start → ", timeout=60)
        said = [line for line in lines.seen if f'Namespace "{fresh}"' in line]
        assert sorted(line.split("│")[1].split('"')[2].strip() for line in said) == [
            "created",
            "exists",
            "exists",
        ], said
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, "\n".join(lines.rest())
    finally:
        stop(proc)
        with contextlib.suppress(client.ApiException):
            client.CoreV1Api(api_client).delete_namespace(fresh)
