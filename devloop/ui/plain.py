"""Events as one timestamped `rich` line each: the output when there is no terminal UI."""

from __future__ import annotations

import json
import os
import sys
import time

from rich.console import Console
from rich.markup import escape

from devloop import events, inert
from devloop.problems import Problem


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def describe(event: events.Event) -> tuple[str, str] | None:
    """(style, text) for an event; None for events this output does not show."""
    match event:
        case events.CycleStarted(changed=changed, reason=reason):
            what = ", ".join(changed) + " changed" if changed else reason
            return "bold", what
        case events.Rendered(content_hash=h, code_bytes=size, files_changed=files, format=fmt):
            listed = f" ({', '.join(files)})" if files else ""
            shown = f", format {fmt}" if fmt else ""
            return "dim", f"rendered {size:,} bytes, hash {h[:12]}{listed}{shown}"
        case events.RenderFailed(problems=problems):
            return "red", "\n".join(f"{p.severity}: {p}" for p in problems)
        case events.Unchanged(pod=pod):
            serving = f" (pod {pod})" if pod else ""
            return "dim", f"unchanged: the cluster already runs this{serving}; nothing applied"
        case events.Applied(objects=objects, ms=ms, pruned=pruned):
            extra = f"; deleted {', '.join(pruned)}" if pruned else ""
            return "", f"applied {len(objects)} objects in {_ms(ms)}{extra}"
        case events.RestartTriggered(deployment=name, via=via):
            how = {
                "template": "pod template changed",
                "restartedAt": "rollout restart",
                "in-progress": "following the rollout under way",
            }.get(via, via)
            return "", f"{how}: deployment/{name}"
        case events.PodProgress(pod=pod, step="warning", detail=detail):
            return "yellow", f"pod {pod}: {detail}"
        case events.PodProgress(pod=pod, step=step, detail=detail, ms=ms):
            shown = f" {detail}" if detail and step == "pulled" else ""
            return "dim", f"pod {pod} {step}{shown} ({_ms(ms)})"
        case events.PodReady(pod=pod, ms=ms, edit_to_ready_ms=edit):
            total = f", {_ms(edit)} from the edit" if edit is not None else ""
            return "green", f"pod {pod} Ready in {_ms(ms)}{total}"
        case events.RolloutFailed(pod=pod, reason=reason, message=message, last_logs=logs):
            text = f"rollout failed: {reason}: {message}" + (f" (pod {pod})" if pod else "")
            if logs:
                text += "\n" + "\n".join(f"  | {line}" for line in logs)
            return "red", text
        case events.Explained(what=what, fix=fix):
            return "yellow", f"  what happened: {what}\n  what to do: {fix}"
        case events.LogLine(pod=pod, text=text):
            return "", f"[{pod}] {text}"
        case events.Warning(message=message):
            return "yellow", message
        case events.Error(message=message, details=details):
            return "red", "\n".join([f"error: {message}", *(f"  {d}" for d in details)])
        case events.Retrying(what=what, attempt=attempt, delay_s=delay, error=error):
            return "yellow", f"{what} failed ({error}); retry {attempt} in {delay:.1f} s"
        case events.PreflightReport(lines=lines):
            return "", "cluster check\n" + "\n".join(lines)
        case events.LoopState(state=state, detail=detail) if state in ("paused", "waiting"):
            return "yellow", f"{state}: {detail}" if detail else state
        case events.Connected(context=context, server=server, namespace=ns, embedded=embedded):
            where = "the embedded cluster" if embedded else f"context {context}"
            return "", f"{where} ({server}), namespace {ns}"
        case events.Serving(url=url):
            return "bold", f"the workflow answers at {url} (the pod served, through rollouts)"
        case events.RunResult(status=status, body=body, summary=summary, what=what):
            shown = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body
            said = "".join(f"\n  {line}" for line in summary)
            return ("green" if status == 200 else "red"), f"{what} → {status}: {shown}{said}"
    return None


class ClosableConsole(Console):
    """A console whose reader may go away (`pdwatch DIR --once | head -1`): the rest of the
    output is dropped and the command still finishes its job and its exit code, where
    rich's default would end the process with exit 1 and no word."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


class CycleSummary:
    """Collects one cycle's milestones into the compact timeline line printed at its end:
    `nodes/format.ts changed → applied in 12 ms → pod x Ready in 1.4 s`."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, event: events.Event) -> str | None:
        match event:
            case events.CycleStarted(changed=changed, reason=reason):
                self.parts = [(", ".join(changed) + " changed") if changed else reason]
            case events.Applied(ms=ms):
                self.parts.append(f"applied in {_ms(ms)}")
            case events.PodReady(pod=pod, ms=ms):
                self.parts.append(f"pod {pod} Ready in {_ms(ms)}")
            case events.RolloutFailed(reason=reason):
                self.parts.append(f"failed: {reason}")
            case events.Unchanged():
                self.parts.append("unchanged, nothing deployed")
            case events.RenderFailed(problems=problems):
                self.parts.append(
                    f"{sum(p.is_error for p in problems)} problem(s); the running deploy stays"
                )
            case events.CycleFinished(outcome=outcome, edit_to_ready_ms=edit):
                if outcome == "superseded":
                    self.parts.append("superseded by a change in the cluster")
                if edit is not None:
                    self.parts.append(f"{_ms(edit)} from save to Ready")
                line = " → ".join(self.parts)
                self.parts = []
                return line or None
        return None


class PlainOutput:
    """Callable sink for events: prints each as a timestamped line, and each cycle's
    timeline when it ends."""

    def __init__(self, console: Console | None = None, prefix: str = "") -> None:
        """`prefix`: the workflow's name, when a session watches several (each line says
        whose it is)."""
        self.console = console or ClosableConsole(highlight=False, soft_wrap=True)
        self.summary = CycleSummary()
        self.warned: tuple[Problem, ...] = ()
        self.prefix = f"{escape(inert.line(prefix))} │ " if prefix else ""

    def __call__(self, event: events.Event) -> None:
        event = inert.event(event)  # nothing from outside drives the terminal
        if isinstance(event, events.Rendered) and event.warnings != self.warned:
            self.warned = event.warnings  # each set of warnings once, not every cycle
            for problem in event.warnings:
                self.console.print(
                    self.prefix + escape(f"{problem.severity}: {problem}"), style="yellow"
                )
        line = self.summary.add(event)
        if line:
            outcome = getattr(event, "outcome", "")
            style = {"ready": "bold green", "failed": "bold red", "invalid": "bold red"}.get(
                outcome, "bold"
            )
            self.console.print(
                f"[dim]{time.strftime('%H:%M:%S')}[/dim] {self.prefix}{escape(line)}", style=style
            )
            return
        shown = describe(event)
        if shown is None:
            return
        style, text = shown
        stamp = time.strftime("%H:%M:%S")
        first, *rest = escape(text).split("\n")
        self.console.print(f"[dim]{stamp}[/dim] {self.prefix}{first}", style=style or None)
        for line in rest:
            self.console.print(f"         {self.prefix}{line}", style=style or None)
