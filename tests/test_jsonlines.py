"""`--json` (devloop.ui.jsonlines): the session as one JSON object per event."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import signal
from pathlib import Path

from devloop import events
from devloop.problems import Problem
from devloop.sim import EmbeddedCluster
from devloop.ui.jsonlines import SCHEMA, JsonLines, record
from tests.processes import Lines, run_pdwatch, start_pdwatch, stop

EXAMPLES = Path(__file__).parent.parent / "examples"
README = Path(__file__).parent.parent / "README.md"


def test_an_event_as_its_record() -> None:
    problem = Problem("workflow.yaml", "bad", 3, 1)
    got = json.loads(json.dumps(record(events.RenderFailed((problem,)), "hello", 4, 0.25)))
    assert got == {
        "schema": SCHEMA,
        "time": "1970-01-01T00:00:00.250Z",
        "workflow": "hello",
        "cycle": 4,
        "event": "RenderFailed",
        "problems": [
            {
                "file": "workflow.yaml",
                "message": "bad",
                "line": 3,
                "column": 1,
                "severity": "error",
                "source": None,
            }
        ],
    }
    assert record(events.Applied(("Deployment/x",), 12.3456), "x", 1, 0)["ms"] == 12.3


def test_the_cycle_is_the_one_in_flight_and_the_text_is_ascii() -> None:
    stream = io.StringIO()
    out = JsonLines("hello", stream)
    out(events.Serving("http://127.0.0.1:1"))
    out(events.CycleStarted(7, ("nodes/a.ts",)))
    out(events.LogLine("p", "\x1b[31mred\x1b]0;title\x07 é"))
    out(events.CycleFinished(7, "ready"))
    out(events.LogLine("p", "after"))
    lines = stream.getvalue().splitlines()
    assert all(line.isascii() for line in lines)
    parsed = [json.loads(line) for line in lines]
    assert [p["cycle"] for p in parsed] == [None, 7, 7, 7, None]
    assert parsed[2]["text"] == "\x1b[31mred\x1b]0;title\x07 é"  # as the pod wrote it
    assert "\\u001b" in lines[2]


def test_the_readme_documents_every_event() -> None:
    section = README.read_text().split("## Events as JSON", 1)[1].split("\n## ", 1)[0]
    for kind in events.Event.__subclasses__():
        fields = [f.name for f in dataclasses.fields(kind)]
        row = re.search(rf"^\| `{kind.__name__}` \| (.*) \|", section, re.M)
        assert row is not None, f"{kind.__name__} is not in the README's table"
        for name in fields:
            assert f"`{name}`" in row[1], f"{kind.__name__}.{name} is not in the README"


def test_a_session_as_json(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = start_pdwatch(directory, "--kubeconfig", kubeconfig, "--json")
    try:
        lines = Lines(proc)
        lines.until('"event": "CycleFinished"', timeout=60)
        (directory / "nodes" / "greet.ts").write_text(
            'console.log("\\x1b[2Jcleared?");\nexport default async () => ({});\n'
        )
        lines.until('"text": "\\u001b[2Jcleared?"')
        lines.until('"event": "CycleFinished"')
        proc.send_signal(signal.SIGINT)
        rest = lines.rest()
        assert proc.wait(timeout=30) == 0, "\n".join(rest)
        parsed = [json.loads(line) for line in lines.seen]
        assert {p["schema"] for p in parsed} == {SCHEMA}
        assert {p["workflow"] for p in parsed} == {"hello"}
        kinds = [p["event"] for p in parsed]
        assert kinds[0] == "Connected" and "Serving" in kinds
        finished = [p for p in parsed if p["event"] == "CycleFinished"]
        assert [(f["cycle"], f["outcome"]) for f in finished] == [(1, "ready"), (2, "ready")]
        started = [p for p in parsed if p["event"] == "CycleStarted"]
        assert started[1]["changed"] == ["nodes/greet.ts"]
        ready = [p for p in parsed if p["event"] == "PodReady"]
        assert [r["cycle"] for r in ready] == [1, 2]
    finally:
        stop(proc)


def test_json_is_for_watching(tmp_path: Path) -> None:
    done = run_pdwatch(EXAMPLES / "hello", "--render", "--json")
    assert done.returncode == 2
    assert "--json is for watching" in done.stderr
