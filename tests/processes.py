"""pdwatch as a real process: start it, read its plain output line by line with deadlines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

from tests.target import cli_args, patience


class Lines:
    """The process's stdout, line by line, readable with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: Queue[str | None] = Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout

        def pump() -> None:
            for line in stream:
                self.queue.put(line.rstrip("\n"))
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, needle: str, timeout: float = 30) -> str:
        """The next line with `needle`, within `timeout` in all (however chatty the output)."""
        deadline = time.monotonic() + patience(timeout)
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(
                    f"{needle!r} not seen; got:\n" + "\n".join(self.seen)
                ) from None
            if line is None:
                raise AssertionError(f"output ended before {needle!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if needle in line:
                return line

    def until_all(self, *needles: str, timeout: float = 30) -> None:
        """Lines with each of `needles`, in any order, within `timeout` in all."""
        deadline = time.monotonic() + patience(timeout)
        missing = list(needles)
        while missing:
            line = self.until("", max(0.0, deadline - time.monotonic()) / patience(1))
            missing = [n for n in missing if n not in line]

    def rest(self, timeout: float = 10) -> list[str]:
        """Every line until the output ends."""
        while True:
            try:
                line = self.queue.get(timeout=timeout)
            except Empty:
                return self.seen
            if line is None:
                return self.seen
            self.seen.append(line)


def with_mode(args: tuple[str | Path, ...]) -> list[str]:
    """pdwatch's arguments as the tests deploy in this mode: given a kubeconfig, the
    real-cluster mode's image and RuntimeClass (tests/target.py) come first, so a test's
    own options come later and win."""
    mode = cli_args() if "--kubeconfig" in args else []
    return [*mode, *(str(a) for a in args)]


def run_pdwatch(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m devloop ARGS` to its end, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "devloop", *with_mode(args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def start_pdwatch(
    *args: str | Path, env: dict[str, str] | None = None, python: list[Path] | None = None
) -> subprocess.Popen[str]:
    """pdwatch as `python -m devloop ARGS`, or as `python SCRIPT ARGS` for a script that
    runs pdwatch with something injected."""
    program = [str(p) for p in python] if python else ["-m", "devloop"]
    return subprocess.Popen(
        [sys.executable, *program, *with_mode(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
