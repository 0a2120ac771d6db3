"""The TUI in a real terminal: tmux runs `pdwatch DIR --embedded` at 120x40 (and 80x24);
in real-cluster mode `pdwatch DIR --kubeconfig ...` against that cluster."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devloop.sim.settings import DEFAULT_IMAGE
from devloop.ui.widgets import short_image
from tests import target
from tests.helpers import node_code

EXAMPLES = Path(__file__).parent.parent / "examples"
TMUX = shutil.which("tmux")
PROMPT = "pdwatch-test$"

if TMUX is None and not os.environ.get("CI"):
    pytest.skip("tmux is not installed (CI installs it)", allow_module_level=True)


class Terminal:
    def __init__(self, width: int = 120, height: int = 40) -> None:
        assert TMUX is not None, "tmux is required"
        self.socket = f"pdwatch-{uuid.uuid4().hex[:8]}"
        self.tmux(
            [
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                str(width),
                "-y",
                str(height),
                f"env PS1='{PROMPT} ' TERM=xterm-256color bash --norc --noprofile",
            ]
        )

    def tmux(self, args: list[str]) -> str:
        return subprocess.run(
            [TMUX or "tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    def type(self, text: str) -> None:
        self.tmux(["send-keys", "-t", "t", text, "Enter"])

    def key(self, key: str) -> None:
        self.tmux(["send-keys", "-t", "t", key])

    def screen(self, history: bool = False) -> str:
        """What the terminal shows; with `history`, the lines scrolled off above it too."""
        return self.tmux(["capture-pane", "-p", "-t", "t", *(["-S", "-"] if history else [])])

    def resize(self, width: int, height: int) -> None:
        self.tmux(["resize-window", "-t", "t", "-x", str(width), "-y", str(height)])

    def wait_until(
        self, ready: Callable[[str], bool], timeout: float = 40, history: bool = False
    ) -> str:
        """The screen once `ready(screen)` (a terminal has no events to wait on)."""
        deadline = time.monotonic() + target.patience(timeout)
        while True:
            screen = self.screen(history)
            if ready(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"not as expected within {timeout}s:\n{screen}")
            time.sleep(0.2)

    def wait_for(self, *needles: str, timeout: float = 40) -> str:
        return self.wait_until(lambda screen: all(n in screen for n in needles), timeout)

    def close(self) -> None:
        subprocess.run(
            [TMUX or "tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10
        )


@pytest.fixture
def cluster_option(request: pytest.FixtureRequest, tmp_path: Path, namespace: str) -> str:
    """pdwatch's options for the cluster under test: an embedded one of its own, or the
    real cluster (through the test's proxy, in its namespace: asked for here so the test
    counts as one on the cluster under test)."""
    if target.REAL is None:
        return "--embedded"
    cluster = request.getfixturevalue("cluster")
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    return shlex.join(["--kubeconfig", str(kubeconfig), *target.cli_args()])


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    try:
        yield term
    finally:
        term.close()


def test_edit_shows_up_in_the_tui_and_q_returns_to_the_shell(
    tmp_path: Path, cluster_option: str, terminal: Terminal
) -> None:
    directory = tmp_path / "uptime-prober"
    shutil.copytree(EXAMPLES / "uptime-prober", directory)
    terminal.wait_for(PROMPT)
    terminal.type(f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}")
    terminal.wait_for(
        "deploys", "● watching", "✓", "Workflow server listening on http://localhost:8080"
    )
    (directory / "nodes" / "format-report.ts").write_text(
        'console.log("report format v2 is live");\nexport default () => ({ text: "" });\n'
    )
    terminal.wait_for("report format v2 is live")

    def row_done(screen: str) -> bool:  # the log line can show a moment before the row's ✓
        rows = [line for line in screen.splitlines() if "nodes/forma" in line]
        return bool(rows) and "✓" in rows[0]

    terminal.wait_until(row_done)
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)  # the TUI is gone
    assert "Traceback" not in screen


def last_line(screen: str) -> str:
    lines = [line.strip() for line in screen.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_sigterm_restores_the_terminal(
    tmp_path: Path, cluster_option: str, terminal: Terminal
) -> None:
    import signal

    import psutil

    directory = tmp_path / "hello-sigterm"
    shutil.copytree(EXAMPLES / "hello", directory)
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}; echo exit=$?"
    )
    terminal.wait_for("● watching", "✓")
    (pdwatch,) = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(directory) in " ".join(p.info["cmdline"] or [])
    ]
    pdwatch.send_signal(signal.SIGTERM)
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=0" in screen and "Traceback" not in screen


def test_unreachable_cluster_shows_in_the_tui_not_as_a_traceback(
    tmp_path: Path, terminal: Terminal
) -> None:
    directory = tmp_path / "hello-offline"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-gone\n"
        "clusters: [{name: kind-gone, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: kind-gone, context: {cluster: kind-gone, user: u}}]\n"
    )
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} --kubeconfig {kubeconfig}"
    )
    screen = terminal.wait_for("● retrying", "cluster check failed", "Connection refused")
    assert "Traceback" not in screen
    terminal.key("q")
    terminal.wait_until(lambda s: last_line(s) == PROMPT)


def test_refused_context_is_shown_and_exits_3(tmp_path: Path, terminal: Terminal) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "clusters: [{name: prod, cluster: {server: 'https://k8s.example.com:6443'}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: prod, context: {cluster: prod, user: u}}]\n"
    )
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {EXAMPLES / 'hello'} "
        f"--kubeconfig {kubeconfig}; echo exit=$?"
    )
    screen = terminal.wait_for("does not look like a local", "● error")
    assert "Traceback" not in screen
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=3" in screen


def test_ctrl_c_quits_and_restores_the_terminal(
    tmp_path: Path, cluster_option: str, terminal: Terminal
) -> None:
    directory = tmp_path / "hello-ctrl-c"
    shutil.copytree(EXAMPLES / "hello", directory)
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}; echo exit=$?"
    )
    terminal.wait_for("● watching", "✓")
    terminal.key("C-c")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=0" in screen and "Traceback" not in screen


def test_several_workflows_in_one_terminal_ui(
    tmp_path: Path, cluster_option: str, terminal: Terminal
) -> None:
    """`pdwatch PARENT` in a terminal: the workflows bar, one shown, ] shows the next."""
    for name in ("hello", "emoji-report"):
        shutil.copytree(EXAMPLES / name, tmp_path / "family" / name)
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {tmp_path / 'family'} {cluster_option}"
        "; echo exit=$?"
    )
    terminal.wait_for("1 emoji-report ● watching ✓", "2 hello ● watching ✓", "report node loaded")
    assert "emoji-report v1.0" in terminal.screen()
    terminal.key("]")
    screen = terminal.wait_for("hello v1.0", "Workflow: hello v1.0")
    assert "report node loaded" not in screen  # the logs are the shown workflow's
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=0" in screen and "Traceback" not in screen


def test_one_name_in_two_namespaces_has_a_view_each(
    tmp_path: Path, cluster_option: str, namespace: str, terminal: Terminal
) -> None:
    """Two workflows named alike (in two namespaces): a row and a view each, told apart by
    their directories (they shared one view before)."""
    from tests.test_several import in_namespace, named

    for team in ("team-a", "team-b"):
        in_namespace(named(tmp_path / team, "same"), f"{namespace}-{team[-1]}")
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {tmp_path / 'team-a' / 'same'} "
        f"{tmp_path / 'team-b' / 'same'} {cluster_option} --create-namespace; echo exit=$?"
    )
    terminal.wait_for("1 same (team-a/same) ● watching ✓", "2 same (team-b/same) ● watching ✓")
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=0" in screen and "Traceback" not in screen


def test_q_quits_while_paused(tmp_path: Path, cluster_option: str, terminal: Terminal) -> None:
    directory = tmp_path / "hello-paused"
    shutil.copytree(EXAMPLES / "hello", directory)
    terminal.wait_for(PROMPT)
    terminal.type(
        f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}; echo exit=$?"
    )
    terminal.wait_for("● watching", "✓")
    terminal.key("p")
    terminal.wait_for("● paused")
    (directory / "nodes" / "greet.ts").write_text(node_code("saved while paused"))
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "exit=0" in screen and "Traceback" not in screen


def test_at_80x24_and_after_resizes_the_tui_keeps_its_promises(
    tmp_path: Path, cluster_option: str
) -> None:
    """The footer keeps q Quit and ? Help, a cut cell ends with …, a pod name too long for
    its panel shows its distinct end, and the logs follow after the terminal grew and
    shrank again."""
    terminal = Terminal(80, 24)
    try:
        directory = tmp_path / "uptime-prober"
        shutil.copytree(EXAMPLES / "uptime-prober", directory)
        terminal.wait_for(PROMPT)
        # COLUMNS and LINES exported (as some shells and launchers do) must not pin the size.
        terminal.type(
            f"cd {Path.cwd()} && COLUMNS=80 LINES=24 {sys.executable} -m devloop {directory} "
            f"{cluster_option}"
        )
        screen = terminal.wait_for("● watching", "✓", "listening on")
        header = screen.splitlines()[0]
        assert "uptime-prober v2.0  ● watching" in header
        # the small layout (issue 29 §6): the header keeps where and what, said short ...
        assert " ns/" in header, header
        if target.REAL is None:  # the tests' real-cluster namespaces fill the line
            assert short_image(DEFAULT_IMAGE) in header, header
        lines = screen.splitlines()
        # ... the deploys table keeps how long a rollout took ...
        assert "outcome" in lines[2] and "rollout" in lines[2], lines[2]
        # ... and the pod panel stays in its box: both boxes of the top row close on one line
        closing = next(line for line in lines[1:] if line.startswith("╰"))
        assert closing.count("╰") == 2 and closing.rstrip().endswith("╯"), closing
        footer = screen.rstrip().splitlines()[-1]
        assert "q Quit" in footer and "? Help" in footer, footer
        serving = next(line for line in screen.splitlines() if "serving" in line)
        assert "…-" in serving and "uptime-prober-" not in serving, serving

        (directory / "nodes" / "format-report.ts").write_text(
            'console.log("format v2 at 80x24");\nexport default () => ({ text: "" });\n'
        )
        screen = terminal.wait_for("format v2 at 80x24")
        row = next(line for line in screen.splitlines() if "nodes/f" in line)
        assert "nodes/format-report.ts" not in row and "…" in row, row

        def footer_on_row(row: int) -> Callable[[str], bool]:  # the app has redrawn
            return lambda s: len(s.splitlines()) > row and "q Quit" in s.splitlines()[row]

        terminal.resize(120, 40)
        terminal.wait_until(footer_on_row(39))
        terminal.resize(80, 24)
        terminal.wait_until(footer_on_row(23))
        (directory / "nodes" / "format-report.ts").write_text(
            'console.log("format v3 after resizing");\nexport default () => ({ text: "" });\n'
        )
        terminal.wait_for("format v3 after resizing")
        terminal.key("q")
        screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
        assert "Traceback" not in screen
    finally:
        terminal.close()


def test_h_shows_the_deploy_history(
    tmp_path: Path, cluster_option: str, terminal: Terminal
) -> None:
    directory = tmp_path / "hello-history"
    shutil.copytree(EXAMPLES / "hello", directory)
    terminal.wait_for(PROMPT)
    terminal.type(f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}")
    terminal.wait_for("● watching", "✓")
    (directory / "nodes" / "greet.ts").write_text(node_code("second revision"))
    terminal.wait_for("second revision")

    def live_rows(screen: str) -> list[str]:  # the footer says "diff with live" too
        return [
            line
            for line in screen.splitlines()
            if "live" in line and "│" in line and "Enter:" not in line
        ]

    # The revision is recorded beside the cycle, just after it is Ready: until it is, the
    # history shows the first one only, as it would to someone pressing h that early.
    deadline = time.monotonic() + target.patience(20)
    while True:
        terminal.key("h")
        screen = terminal.wait_for("deploy history", "nodes/greet.ts")
        if live_rows(screen) or time.monotonic() > deadline:
            break
        terminal.key("Escape")
        terminal.wait_until(lambda s: "deploy history" not in s)
    rows = live_rows(screen)
    assert rows and " 2 " in rows[0], screen
    terminal.key("Escape")
    terminal.wait_until(lambda s: "deploy history" not in s)
    terminal.key("q")
    screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
    assert "Traceback" not in screen


def test_a_terminal_that_goes_away_ends_pdwatch(tmp_path: Path, cluster_option: str) -> None:
    """tmux killed under a TUI that has been tailing logs: Textual's shutdown blocked on a
    write to the gone terminal and pdwatch stayed alive, ignoring SIGHUP and SIGTERM. The
    quit watchdog now ends it."""
    import psutil

    from devloop.daemon import QUIT_WATCHDOG_S

    directory = tmp_path / "uptime-prober-hangup"
    shutil.copytree(EXAMPLES / "uptime-prober", directory)
    terminal = Terminal(80, 24)
    try:
        terminal.wait_for(PROMPT)
        terminal.type(
            f"cd {Path.cwd()} && {sys.executable} -m devloop {directory} {cluster_option}"
        )
        terminal.wait_for("● watching", "✓")
        (directory / "nodes" / "format-report.ts").write_text(
            'console.log("tailing before the hangup");\nexport default () => ({ text: "" });\n'
        )
        terminal.wait_for("tailing before the hangup")
        (pdwatch,) = [
            p
            for p in psutil.process_iter(["cmdline"])
            if str(directory) in " ".join(p.info["cmdline"] or [])
        ]
    finally:
        terminal.close()
    try:
        pdwatch.wait(timeout=QUIT_WATCHDOG_S + 15)
    except psutil.TimeoutExpired:
        pdwatch.kill()
        raise AssertionError("pdwatch outlived its terminal") from None


def test_the_readme_s_own_cluster_commands_typed_as_written(tmp_path: Path) -> None:
    """The README's three commands for an embedded cluster kept across runs, typed into a
    shell exactly as the README shows them (its `greeter` written out beside them, and
    `.venv` where the README's paths expect it): the cluster starts, pdwatch deploys to it
    and is quit with q, and kubectl lists the pod that stays."""
    from tests.test_readme import section, write_example

    block = re.search(r"keep one across runs.*?```sh\n(.*?)```", section("Getting pdwatch"), re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 3 and commands[0].endswith("&"), commands
    write_example(tmp_path)
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    terminal = Terminal(120, 40)
    try:
        terminal.wait_for(PROMPT)
        terminal.type(f"cd {tmp_path} && export PATH={Path(sys.executable).parent}:$PATH")
        terminal.type(commands[0])
        terminal.wait_for("serving on")
        terminal.type(commands[1])
        terminal.wait_for("● watching", "✓")
        terminal.key("q")
        terminal.wait_until(lambda s: last_line(s) == PROMPT)
        terminal.type(commands[2])
        screen = terminal.wait_until(lambda s: "Running" in s and last_line(s) == PROMPT)
        assert re.search(r"^greeter-\S+\s+1/1\s+Running", screen, re.M), screen
        assert "Traceback" not in screen
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            terminal.type("kill %1")
        terminal.close()


@pytest.mark.skipif(
    shutil.which("go") is None or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="Kubernetes' control plane needs Go to build, and the node root and iproute2",
)
@pytest.mark.second_pass
def test_the_readme_s_control_plane_commands_typed_as_written() -> None:
    """The README's three commands for Kubernetes' own control plane, typed as written in
    two shells at the repository's root: the control plane in the foreground of one (its
    build cached), kubectl shows its node Ready from the other, pdwatch deploys the hello
    example to it and quits with q; Ctrl-C ends the control plane."""
    from devloop.controlplane.cluster import NODE_NAME
    from tests.test_readme import README

    text = README.read_text(encoding="utf-8")
    block = re.search(r"### Kubernetes' own control plane.*?```sh\n(.*?)```", text, re.S)
    assert block is not None
    commands = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(commands) == 3 and "dev.py controlplane" in commands[0], commands
    root = README.parent
    plane, shell = Terminal(120, 20), Terminal(120, 40)
    try:
        for terminal in (plane, shell):
            terminal.wait_for(PROMPT)
            terminal.type(f"cd {root} && export PATH={Path(sys.executable).parent}:$PATH")
        plane.type(commands[0])
        up = plane.wait_for("control plane up in", timeout=600)  # a cold machine builds it
        logs = re.search(r"logs in (/\S+)", "".join(up.splitlines()))
        assert logs is not None, up
        shell.type(commands[1])
        screen = shell.wait_until(lambda s: "Ready" in s and last_line(s) == PROMPT)
        assert re.search(rf"^{NODE_NAME}\s+Ready", screen, re.M), screen
        shell.type("clear")
        shell.type(commands[2])
        shell.wait_for("● watching", "✓", "listening on", timeout=90)
        shell.key("q")
        shell.wait_until(lambda s: last_line(s) == PROMPT)
        plane.key("C-c")
        # the shell's prompt again (after the echoed ^C): the control plane has stopped
        screen = plane.wait_until(lambda s: last_line(s).endswith(PROMPT), timeout=90)
        assert "Traceback" not in screen and "Traceback" not in shell.screen()
        # ... and left none of its processes (etcd, the API server, the controllers)
        import psutil

        left = [
            p.info["name"]
            for p in psutil.process_iter(["name", "cmdline"])
            if any(logs.group(1) in arg for arg in p.info["cmdline"] or [])
        ]
        assert not left, left
    finally:
        plane.close()
        shell.close()


def test_the_readme_s_several_workflows_command_typed_as_written() -> None:
    """The three examples in one session, as the README's Usage says to try it."""
    from tests.test_readme import section

    found = re.search(r"Try\s+`(python3 dev\.py run [^`]+)`", section("Usage"))
    assert found is not None
    command = found.group(1)
    terminal = Terminal(120, 40)
    try:
        terminal.wait_for(PROMPT)
        terminal.type(f"cd {Path(__file__).parent.parent} && {command}; echo exit=$?")
        terminal.wait_for(
            "1 hello ● watching ✓",
            "2 emoji-report ● watching ✓",
            "3 uptime-prober ● watching ✓",
            timeout=90,
        )
        terminal.key("3")
        terminal.wait_for("uptime-prober v")
        terminal.key("q")
        screen = terminal.wait_until(lambda s: last_line(s) == PROMPT)
        assert "exit=0" in screen and "Traceback" not in screen
    finally:
        terminal.close()
