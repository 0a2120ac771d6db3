"""A container's output, run by run: what the kubelet API's containerLogs serves (the
current run, or the previous one), followed as it grows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class LogLine:
    at: float
    text: str


class ContainerLog:
    """The output of one run of a container; `done` once that run has ended."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []
        self.start = 0  # the first line still served: the ones before were rotated away
        self.done = False
        self._changed = asyncio.Event()

    def append(self, text: str) -> None:
        for line in text.split("\n"):
            self.lines.append(LogLine(time.time(), line))
        self._wake()

    def rotate(self) -> None:
        """What the kubelet does past containerLogMaxSize: the file so far is set aside,
        and a new request reads only what is written from now on."""
        self.start = len(self.lines)

    def close(self) -> None:
        self.done = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, seen: int) -> None:
        if len(self.lines) > seen or self.done:
            return
        await self._changed.wait()
