"""`--json`: the session as data, one JSON object per event on stdout, for an editor, a CI
job or an agent to follow (the plain output and the TUI render the same events).

Each line: `{"schema": 1, "time": "…Z", "workflow": NAME, "cycle": N or null, "event":
TYPE, …the event's fields}`. `cycle` is the deploy cycle in flight when the event
happened (null between cycles: a log line of the pod being served, the URL). The text is
ASCII (everything else escaped), so no byte from a pod's log or a file name can reach a
terminal that shows it raw. Adding a field keeps the schema number; renaming or removing
one, or changing a meaning, raises it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any, TextIO

from devloop import events

SCHEMA = 1


def record(event: events.Event, workflow: str, cycle: int | None, at: float) -> dict[str, Any]:
    """One event as the JSON object written for it."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
    fields = {
        key: round(value, 1) if isinstance(value, float) else value  # ms: to a tenth
        for key, value in dataclasses.asdict(event).items()
    }
    return {
        "schema": SCHEMA,
        "time": stamp,
        "workflow": workflow,
        "cycle": cycle,
        "event": type(event).__name__,
        **fields,
    }


class JsonLines:
    """Callable sink for one workflow's events."""

    def __init__(self, workflow: str, stream: TextIO | None = None) -> None:
        self.workflow = workflow
        self.stream = stream or sys.stdout
        self.cycle: int | None = None

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.CycleStarted):
            self.cycle = event.cycle
        line = json.dumps(record(event, self.workflow, self.cycle, time.time()), default=str)
        if isinstance(event, events.CycleFinished):
            self.cycle = None
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away: the session goes on
            pass
