"""Background tasks cannot vanish (devloop.supervise, issue 27 §5): a failure is said,
its traceback goes to the --log-file, and the task starts again."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

import devloop.loop
from devloop import events
from devloop.kube.client import Kube
from devloop.loop import DevLoop
from devloop.supervise import LOG, configure_log_file
from tests.helpers import node_code
from tests.looprig import running_loop
from tests.processes import run_pdwatch

GREET = Path("nodes") / "greet.ts"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "debug.log"
    configure_log_file(str(path))
    try:
        yield path
    finally:
        for handler in list(LOG.handlers):
            if isinstance(handler, logging.FileHandler):
                handler.close()
                LOG.removeHandler(handler)


async def test_the_worker_failing_between_cycles_is_said_and_starts_again(
    tmp_path: Path,
    api_client: client.ApiClient,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: the worker ended with the exception and no word; pdwatch kept watching and
    deployed nothing again (the second save below never finished)."""
    real = DevLoop._ensure_monitor
    calls = 0

    async def broken_once(self: DevLoop) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # after the first save's cycle, outside its own error handling
            raise RuntimeError("a bug after the cycle")
        await real(self)

    monkeypatch.setattr(DevLoop, "_ensure_monitor", broken_once)
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        mark = rig.mark()
        (rig.directory / GREET).write_text(node_code("first"))
        error = await rig.wait_for(events.Error, since=mark)
        assert error.message == (
            "the deploy worker failed unexpectedly: RuntimeError: a bug after the cycle"
        )
        assert error.details == (
            "the deploy worker starts again in 0.5 s",
            "--log-file FILE keeps the traceback",
        )
        mark = rig.mark()
        (rig.directory / GREET).write_text(node_code("second"))
        assert (await rig.cycle_done(mark)).outcome == "ready"
        await rig.wait_for(events.LogLine, lambda e: e.text == "second", mark)


async def test_the_history_recorder_failing_keeps_its_traceback_and_starts_again(
    tmp_path: Path,
    api_client: client.ApiClient,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    log_file: Path,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("boom in the recorder")

    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        monkeypatch.setattr(devloop.loop.kube_history, "record", broken)
        for version in ("one", "two"):  # the second fails too: the recorder was restarted
            mark = rig.mark()
            (rig.directory / GREET).write_text(node_code(version))
            error = await rig.wait_for(events.Error, since=mark)
            assert error.message == (
                "the history recorder failed unexpectedly: RuntimeError: boom in the recorder"
            )
            assert error.details[1] == f"the traceback is in {log_file}"
        text = log_file.read_text()
        assert text.count("the history recorder failed") == 2
        assert "Traceback (most recent call last)" in text and "boom in the recorder" in text


def test_a_log_file_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    done = run_pdwatch(tmp_path, "--render", "--log-file", str(tmp_path / "no" / "such.log"))
    assert done.returncode == 2
    assert "--log-file" in done.stderr and "No such file or directory" in done.stderr


async def test_a_watch_refused_to_the_idle_monitor_is_said(
    tmp_path: Path, api_client: client.ApiClient, namespace: str, cluster: Any
) -> None:
    """The session's pod watch refused while idle (a Role changed under pdwatch): the
    idle monitor's failure is said, not lost in a task nobody awaits."""
    async with running_loop(tmp_path, Kube(api_client, namespace)) as rig:
        mark = rig.mark()
        cluster.forbid("watch", "pods")
        cluster.drop_streams()  # the open watches end; the pod watch is asked again
        error = await rig.wait_for(
            events.Error, lambda e: e.message.startswith("the idle monitor failed"), mark
        )
        assert "watch Pod" in error.message, error
