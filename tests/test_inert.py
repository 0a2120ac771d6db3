"""Untrusted text never drives the terminal (issue 24 §4): escape sequences a node logs,
control characters in file names and cluster messages reach every output mode as
visible escapes."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from devloop import events, inert
from devloop.problems import Problem
from devloop.sim import EmbeddedCluster
from tests.processes import run_pdwatch

EXAMPLES = Path(__file__).parent.parent / "examples"
TITLE = "\x1b]0;PWNED\x07"  # OSC 0: set the window title
CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write the clipboard


def dangerous(text: str) -> bool:
    return any(
        (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\u202e"
        for c in text
    )


@given(st.text())
def test_a_line_made_inert_holds_no_control_character(text: str) -> None:
    shown = inert.line(text)
    assert not dangerous(shown) and "\n" not in shown


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp"))))
def test_ordinary_text_is_left_as_it_is(text: str) -> None:
    assert inert.line(text) == text


def test_events_are_made_inert_field_by_field() -> None:
    failed = events.RolloutFailed("p", "Error", f"crashed {TITLE}", (f"log {CLIPBOARD}",))
    shown = inert.event(failed)
    assert shown.message == "crashed \\x1b]0;PWNED\\x07"
    assert shown.last_logs == ("log \\x1b]52;c;cHduZWQ=\\x07",)
    plain = events.LogLine("p", "hello")
    assert inert.event(plain) is plain  # nothing to change: the same object
    problem = Problem(message="bad", file="nodes/a\nerror: forged.ts", line=1)
    rendered = inert.event(events.RenderFailed((problem,)))
    assert "\n" not in str(rendered.problems[0]) and "\\x0a" in str(rendered.problems[0])


def test_a_node_logging_escape_sequences_cannot_reach_the_terminal(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    """The campaign's repro: console.log of an OSC title and clipboard write, in --once."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / "nodes" / "greet.ts").write_text(
        f'console.log("{TITLE}");\nconsole.log("{CLIPBOARD}");\n'
        "export default async function run() {\n  return {};\n}\n"
    )
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = run_pdwatch(str(directory), "--once", "--kubeconfig", str(kubeconfig))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b]0;PWNED\\x07" in proc.stdout
    assert "\\x1b]52;c;cHduZWQ=\\x07" in proc.stdout


def test_a_file_name_with_a_newline_cannot_forge_a_line(tmp_path: Path) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    (directory / "nodes" / "x\nerror: forged.ts").write_text("export default async () => ({});\n")
    proc = run_pdwatch(str(directory), "--render")
    lines = (proc.stdout + proc.stderr).splitlines()
    assert not any(line.startswith("error: forged") for line in lines), lines
