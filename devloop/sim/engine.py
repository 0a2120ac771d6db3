"""A stand-in for the Pipedreamer engine, run by the simulated kubelet over the files the
pod actually mounts (the ConfigMap as projected through the volume's items).

It does what matters to pdwatch and its users: the start-up log of the real engine
(REFERENCE.md §2), a failure when `workflow.yaml` does not parse or a module cannot be
loaded (a node file, or a relative import such as `./lib/http.ts`, missing from the
mount), and one log line per request served. It cannot run TypeScript; two top-level
statements that Deno would run while loading a module are honoured, so node code can
be seen to change: `console.log("text")` prints the text, and `throw new Error("text")`
crashes the engine at start.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devloop.workflow import Workflow, parse_workflow

ROOT = "/app/workflow"
IMPORT_RE = re.compile(r"""^\s*(?:import|export)\b[^'"]*?\bfrom\s+["'](\.{1,2}/[^"']+)["']""", re.M)
CONSOLE_RE = re.compile(r"""^console\.(?:log|info)\((["'`])(.*?)\1\);?\s*$""")
THROW_RE = re.compile(r"""^throw new Error\((["'`])(.*?)\1\);?\s*$""")


@dataclass
class Exit:
    code: int


class Engine:
    def __init__(self, files: dict[str, str], emit: Callable[[str], None]) -> None:
        self.files = files  # path below /app/workflow → text
        self.emit = emit
        self.workflow: Workflow | None = None
        self.requests = 0

    def start(self) -> Exit | None:
        """Boot as the engine does; an Exit when it dies at start, None when serving."""
        self.emit("Pipedreamer Engine starting...")
        text = self.files.get("workflow.yaml")
        if text is None:
            self.emit(
                f"error: Uncaught (in promise) NotFound: No such file or directory (os "
                f'error 2): readfile "{ROOT}/workflow.yaml"'
            )
            return Exit(1)
        workflow, problems = parse_workflow(text, f"{ROOT}/workflow.yaml")
        if workflow is None:
            for problem in problems:
                self.emit(f"error: invalid workflow: {problem}")
            return Exit(1)
        self.workflow = workflow
        self.emit(f"Workflow: {workflow.name} v{workflow.version}")
        loaded: set[str] = set()
        for node in workflow.nodes:
            failure = self._load(node.path, loaded, importer=None)
            if failure:
                return failure
        stages = workflow.stages()
        self.emit(f"DAG compiled: {len(stages)} stage(s), {len(workflow.nodes)} node(s)")
        for i, stage in enumerate(stages, 1):
            self.emit(f"  Stage {i}: [{', '.join(stage)}]")
        self.emit("Listening on http://0.0.0.0:8080/")
        return None

    def _load(self, path: str, loaded: set[str], importer: str | None) -> Exit | None:
        if path in loaded:
            return None
        loaded.add(path)
        text = self.files.get(path)
        if text is None:
            where = f" at file://{ROOT}/{importer}" if importer else ""
            self.emit(f'error: Module not found "file://{ROOT}/{path}".{where}')
            return Exit(1)
        for target in IMPORT_RE.findall(text):
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            failure = self._load(resolved, loaded, importer=path)
            if failure:
                return failure
        for number, line in enumerate(text.splitlines(), 1):
            printed = CONSOLE_RE.match(line)
            if printed:
                self.emit(printed.group(2))
            thrown = THROW_RE.match(line)
            if thrown:
                self.emit(f"error: Uncaught (in promise) Error: {thrown.group(2)}")
                self.emit(f"    at file://{ROOT}/{path}:{number}:7")
                return Exit(1)
        return None

    def run(self, body: Any) -> dict[str, Any]:
        """POST /run: the JSON result names what ran, in DAG order."""
        assert self.workflow is not None
        self.requests += 1
        order = [name for stage in self.workflow.stages() for name in stage]
        trigger = body.get("trigger") if isinstance(body, dict) else None
        self.emit(
            f"POST /run {json.dumps(body, separators=(',', ':'))}: ran {len(order)} "
            f"node(s) [{', '.join(order)}]"
        )
        return {
            "workflow": self.workflow.name,
            "version": self.workflow.version,
            "trigger": trigger,
            "nodes": order,
            "input": body,
        }
