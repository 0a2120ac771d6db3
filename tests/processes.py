"""pdwatch as a real process: start it, read its plain output line by line with deadlines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
        while True:
            try:
                line = self.queue.get(timeout=patience(timeout))
            except Empty:
                raise AssertionError(
                    f"{needle!r} not seen; got:\n" + "\n".join(self.seen)
                ) from None
            if line is None:
                raise AssertionError(f"output ended before {needle!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if needle in line:
                return line

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


def start_pdwatch(
    *args: str | Path, env: dict[str, str] | None = None, python: list[Path] | None = None
) -> subprocess.Popen[str]:
    """pdwatch as `python -m devloop ARGS`, or as `python SCRIPT ARGS` for a script that
    runs pdwatch with something injected. Given a kubeconfig, it deploys as the tests do
    in this mode (tests/target.py: the real-cluster mode's image and RuntimeClass)."""
    program = [str(p) for p in python] if python else ["-m", "devloop"]
    if "--kubeconfig" in args:  # first: a test's own options come later and win
        args = (*cli_args(), *args)
    return subprocess.Popen(
        [sys.executable, *program, *(str(a) for a in args)],
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
