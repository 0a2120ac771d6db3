"""A scripted stand-in for the loop, so snapshot tests render fixed, repeatable states.

Only the snapshots use it (their pixels must not depend on timing, random pod names or
the clock); the Pilot and tmux tests drive the TUI with the real loop and cluster.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from devloop import events
from devloop.history import Revision
from devloop.problems import Problem
from devloop.render import Bundle, render
from devloop.ui.tui import PdwatchApp
from devloop.ui.workflowview import Session

EXAMPLES = Path(__file__).parent.parent / "examples"
BROKEN = Path("tests/data/broken/workflow.yaml")
POD1, POD2 = "hello-6d5f7c9b8-x2k9z", "hello-7f8d9c6b5-q4w8n"


def hello() -> Bundle:
    result = render(EXAMPLES / "hello")
    assert isinstance(result, Bundle)
    return result


FIRST_DEPLOY: list[events.Event] = [
    events.LoopState("deploying"),
    events.PreflightReport(("  ✓ Kubernetes API reachable (v1.36.0)",), True),
    events.CycleStarted(1, (), "start"),
    events.Rendered("04e049bcc3dc", 410, ("nodes/greet.ts", "workflow.yaml"), 4.0),
    events.Applied(("ConfigMap/hello-code", "Service/hello", "Deployment/hello"), 48.0),
    events.RestartTriggered("hello", "template"),
    events.PodProgress(POD1, "created", "", 9.0),
    events.PodProgress(POD1, "scheduled", "pdwatch-embedded", 11.0),
]
READY: list[events.Event] = [
    *FIRST_DEPLOY,
    events.PodProgress(POD1, "started", "", 35.0),
    *(
        events.LogLine(POD1, line)
        for line in (
            "Pipedreamer Engine starting...",
            "Workflow: hello v1.0",
            "DAG compiled: 1 stage(s), 1 node(s)",
            "  Stage 1: [greet]",
            "Workflow server listening on http://localhost:8080",
            "  POST /run    — trigger workflow execution",
            "  GET  /health — health check",
        )
    ),
    events.PodReady(POD1, "hello-6d5f7c9b8", 98.0),
    events.CycleFinished(1, "ready", 412.0),
    events.LoopState("watching"),
]
INVALID: list[events.Event] = [
    *READY,
    events.CycleStarted(2, ("workflow.yaml",), "change"),
    events.LoopState("deploying"),
    events.RenderFailed(
        (
            Problem(
                str(BROKEN),
                "YAML syntax error: a [ is never closed (missing ] or a comma)",
                7,
                11,
                source="    path: [./nodes/greet.ts",
            ),
        )
    ),
    events.CycleFinished(2, "invalid"),
    events.LoopState("error", "1 problem(s) in the workflow"),
]
CRASHED: list[events.Event] = [
    *READY,
    events.CycleStarted(2, ("nodes/greet.ts",), "change"),
    events.LoopState("deploying"),
    events.Rendered("9a1b2c3d4e5f", 436, ("nodes/greet.ts",), 3.0),
    events.Applied(("ConfigMap/hello-code", "Service/hello", "Deployment/hello"), 21.0),
    events.RestartTriggered("hello", "restartedAt", "2026-11-24T12:00:05.000001Z"),
    events.PodProgress(POD2, "created", "", 12.0),
    events.PodProgress(POD2, "started", "", 40.0),
    events.RolloutFailed(
        POD2,
        "CrashLoopBackOff",
        "back-off 10s restarting failed container=engine",
        (
            "Pipedreamer Engine starting...",
            "Workflow: hello v1.0",
            "Engine failed to start: Error: boom at load",
            "    at file:///app/workflow/nodes/greet.ts:2:7",
        ),
    ),
    events.CycleFinished(2, "failed"),
    events.LoopState("error", "the new pod failed; the previous one keeps running"),
]
PAUSED: list[events.Event] = [
    *READY,
    events.LoopState("paused", "changes are collected and deployed on resume"),
]


class ScriptedLoop:
    """Plays a fixed list of events into the app, then waits to be told to quit."""

    def __init__(self, script: list[events.Event]) -> None:
        self.script = script
        self.paused = False
        self.deployed: Bundle | None = hello()
        self.previous_deployed: Bundle | None = None
        self.app: PdwatchApp | None = None
        self.stopping = asyncio.Event()
        self.revisions: list[Revision] = []  # what history() reads "from the cluster"
        self.live_hash: str | None = None

    async def run(self) -> None:
        assert self.app is not None
        for event in self.script:
            self.app.emit(event)
        await self.stopping.wait()

    def redeploy(self) -> None: ...
    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    async def trigger_run(self, body: object = None) -> events.RunResult:
        return events.RunResult(200, {})

    async def send_webhook(self) -> events.RunResult:
        return events.RunResult(200, {"ok": True}, what="webhook ping (signed)")

    async def history(self) -> tuple[list[Revision], str | None]:
        return list(self.revisions), self.live_hash

    def rollback(self, number: int) -> None: ...

    def quit(self) -> None:
        self.stopping.set()


def scripted_app(script: list[events.Event]) -> PdwatchApp:
    loop = ScriptedLoop(script)
    session = Session("examples/hello", "pdwatch-embedded", True, "default")
    app = PdwatchApp(loop, session, clock=lambda: "12:00:00")
    loop.app = app
    return app
