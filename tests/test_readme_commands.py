"""The README's commands, run as written: its install line (`pipx install .`, which builds
and installs pdwatch as a user gets it), its Usage lines and its history lines, each typed
into a shell with only its `DIR` placeholder filled in (and, on a real cluster, the test
mode's image and RuntimeClass options after it)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from devloop.sim import EmbeddedCluster
from tests.helpers import copy_example, node_code
from tests.processes import Lines
from tests.target import cli_args
from tests.test_readme import README, section

ROOT = README.parent
EXAMPLES = ROOT / "examples"


def block_after(text: str, marker: str) -> list[str]:
    """The command lines of the first ```sh block after `marker`."""
    found = re.search(re.escape(marker) + r".*?```sh\n(.*?)```", text, re.S)
    assert found is not None, marker
    return [line for line in found.group(1).splitlines() if line.strip()]


def filled(line: str, workflow: Path) -> str:
    """The line with DIR as the workflow's path and the mode's options after pdwatch's own
    (a trailing comment stays a comment)."""
    command, _, comment = line.partition("  #")
    command = re.sub(r"\bDIR\b", str(workflow), command.rstrip())
    extra = " ".join(f"'{a}'" for a in cli_args())
    return f"{command} {extra}".rstrip() + (f"  #{comment}" if comment else "")


def shell(
    command: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=timeout
    )


def pdwatch_env(tmp_path: Path, cluster: EmbeddedCluster) -> dict[str, str]:
    """pdwatch on PATH (this interpreter's environment) and the cluster as the current
    context, as a user's shell has them."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "KUBECONFIG": str(kubeconfig), "COLUMNS": "200"}


def test_the_usage_lines_run_as_written(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    lines = block_after(README.read_text(encoding="utf-8"), "\n## Usage")
    by_option = {re.sub(r"\s+#.*", "", line).strip(): line for line in lines}
    assert set(by_option) == {
        "pdwatch DIR",
        "pdwatch DIR --no-tui",
        "pdwatch DIR --json",
        "pdwatch DIR --once",
        """pdwatch DIR --once --run '{"name": "ci"}'""",
        "pdwatch DIR --down",
        "pdwatch DIR --render",
        "pdwatch DIR --history",
        "pdwatch DIR DIR …",
    }, "the README's Usage lines changed: run the new ones here"
    # `pdwatch DIR` (the TUI) and `DIR DIR …` are typed in tmux (tests/test_tui_tmux.py)
    workflow = copy_example(EXAMPLES, "hello", tmp_path)
    env = pdwatch_env(tmp_path, cluster)

    rendered = shell(filled(by_option["pdwatch DIR --render"], workflow), env)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Deployment" in rendered.stdout and "name: hello" in rendered.stdout

    once = shell(filled(by_option["pdwatch DIR --once"], workflow), env)
    assert once.returncode == 0, once.stdout + once.stderr
    assert "Workflow server listening" in once.stdout, once.stdout

    ran = shell(filled(by_option["""pdwatch DIR --once --run '{"name": "ci"}'"""], workflow), env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert '"success": true' in ran.stdout, ran.stdout

    history = shell(filled(by_option["pdwatch DIR --history"], workflow), env)
    assert history.returncode == 0, history.stderr
    assert re.search(r"^\s*\*\s*1\b", history.stdout, re.M), history.stdout

    for option, needle in (("--no-tui", "start → "), ("--json", '"event": "CycleFinished"')):
        proc = subprocess.Popen(
            ["bash", "-c", "exec " + filled(by_option[f"pdwatch DIR {option}"], workflow)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            Lines(proc).until(needle, timeout=60)  # the cluster runs it already
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    down = shell(filled(by_option["pdwatch DIR --down"], workflow), env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Deployment/hello" in down.stdout, down.stdout


def test_the_history_lines_run_as_written(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    lines = block_after(README.read_text(encoding="utf-8"), "\n### History and rollback\n")
    assert [line.split("  #")[0].strip() for line in lines] == [
        "pdwatch DIR --history",
        "pdwatch DIR --history --diff 3 5",
        "pdwatch DIR --rollback 3",
    ], "the README's history lines changed: run the new ones here"
    workflow = copy_example(EXAMPLES, "hello", tmp_path)
    env = pdwatch_env(tmp_path, cluster)
    greet = workflow / "nodes" / "greet.ts"
    for revision in range(1, 6):  # five deploys: revisions 1 to 5
        greet.write_text(node_code(f"revision {revision}"), encoding="utf-8")
        deployed = shell(filled("pdwatch DIR --once", workflow), env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    history = shell(filled(lines[0], workflow), env)
    assert history.returncode == 0, history.stderr
    assert re.search(r"^\s*\*\s*5\b", history.stdout, re.M), history.stdout

    diff = shell(filled(lines[1], workflow), env)
    assert diff.returncode == 0, diff.stderr
    assert "revision 3" in diff.stdout and "revision 5" in diff.stdout, diff.stdout

    rollback = shell(filled(lines[2], workflow), env)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    assert "revision 3" in rollback.stdout, rollback.stdout  # the pod's log: its code runs
    after = shell(filled(lines[0], workflow), env)
    assert re.search(r"^\s*\*\s*3\b", after.stdout, re.M), after.stdout


def tracked_copy(into: Path) -> Path:
    """The repository's tracked files, as a fresh clone has them (links kept as links)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = ROOT / name, into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.exists():
            shutil.copy2(source, target)
    return into


@pytest.mark.skipif(shutil.which("git") is None, reason="the clone is made with git")
@pytest.mark.second_pass
def test_pipx_install_as_the_readme_says_gives_a_pdwatch_that_runs_the_engine(
    tmp_path: Path,
) -> None:
    """`pipx install .` in a clone (pipx from PyPI in a venv of its own), then the installed
    pdwatch deploys an example to its embedded cluster and the engine it ships runs it: an
    install carries the stand-in engine, not just the Python code (it did not: the engine
    was looked up beside the repository, and the pod failed "Module not found")."""
    line = next(line for line in block_after(section("With kind"), "") if line.startswith("pipx"))
    assert line.split("  #")[0].strip() == "pipx install ."
    clone = tracked_copy(tmp_path / "clone")
    tools = tmp_path / "tools"
    venv.create(tools, with_pip=True)
    got = subprocess.run(
        [tools / "bin" / "pip", "install", "-q", "pipx"], capture_output=True, text=True
    )
    assert got.returncode == 0, got.stderr
    home, bin_dir = tmp_path / "pipx-home", tmp_path / "pipx-bin"
    env = {
        **os.environ,
        "PATH": f"{tools / 'bin'}:{bin_dir}:{os.environ['PATH']}",
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "pipx-man"),
        "VIRTUAL_ENV": "",
    }
    installed = subprocess.run(
        ["bash", "-c", line], cwd=clone, capture_output=True, text=True, env=env, timeout=600
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (bin_dir / "pdwatch").exists()
    run = subprocess.run(
        ["pdwatch", "examples/hello", "--embedded", "--once"],
        cwd=clone,
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Workflow server listening" in run.stdout, run.stdout
