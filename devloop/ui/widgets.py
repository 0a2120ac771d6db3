"""The TUI's panels. Each renders state it is given; none talks to the loop or cluster."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.widgets import DataTable, Log, Static

from devloop.ui.timeline import CycleRow
from devloop.ui.workflowview import MAX_LOG_LINES, PodView, Session

STATE_STYLE = {
    "watching": "green",
    "deploying": "dark_orange",
    "paused": "magenta",
    "error": "red",
    "retrying": "red",
    "waiting": "dark_orange",
}
ROW_STYLE = {
    "ready": "green",
    "failed": "red",
    "invalid": "red",
    "unchanged": "dim",
    "superseded": "yellow",
    "running": "dark_orange",
    "applied": "",
}


class HeaderBar(Static):
    DEFAULT_CSS = """
    HeaderBar {
        height: 1; background: $panel; padding: 0 1;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    """
    shown: tuple[Session, str, str] | None = None

    def on_resize(self) -> None:
        if self.shown is not None:
            self.show(*self.shown)

    def show(self, session: Session, state: str, detail: str = "") -> None:
        """Most important first: a narrow terminal cuts the end of the line. Below 100
        columns the cluster, namespace and image are said short (the image without its
        registry path and `:latest`) so that all three still fit at 80."""
        self.shown = (session, state, detail)
        compact = 0 < self.size.width < 100
        text = Text(no_wrap=True, overflow="ellipsis")  # cut at the end, never a part hidden
        text.append(session.workflow or session.directory, style="bold")
        text.append(f"  ● {state}", style=f"bold {STATE_STYLE.get(state, '')}")
        if detail:
            text.append(f" {detail}", style=STATE_STYLE.get(state, ""))
        embedded = "embedded" if compact else "embedded cluster"
        cluster = embedded if session.embedded else session.context
        text.append(f"  {cluster}", style="cyan")
        text.append(f"  ns/{session.namespace}")
        if session.image:
            image = short_image(session.image) if compact else session.image
            text.append(f"  {image}", style="dim")
        if session.url:  # compact: the port alone (the host is always this machine)
            shown = session.url.removeprefix("http://127.0.0.1") if compact else session.url
            text.append(f"  {shown}", style="bold")
        if session.format:
            text.append(f"  {session.format}" if compact else f"  {session.format} format")
        text.append(f"  {session.directory}", style="dim")
        self.update(text)


def short_image(image: str) -> str:
    """`ghcr.io/team/engine:latest` → `engine`; a tag other than latest stays."""
    name = image.rsplit("/", 1)[-1]
    return name.removesuffix(":latest")


def cell(text: str, style: str = "") -> Text:
    """A table cell that, cut short by its column, ends with `…`."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


STATE_MARKS = {"watching": "●", "deploying": "◌", "paused": "‖", "error": "✗", "retrying": "↻"}
OUTCOME_MARKS = {"ready": "✓", "unchanged": "✓", "applied": "✓", "failed": "✗", "invalid": "✗"}


class WorkflowsBar(Static):
    """With several workflows in the session, one line: each one's number, name, state
    and last outcome; the one shown stands out."""

    DEFAULT_CSS = """
    WorkflowsBar {
        height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis;
    }
    """

    def show(self, workflows: list[tuple[str, str, str]], shown: str) -> None:
        text = Text()
        for number, (name, state, outcome) in enumerate(workflows, 1):
            if number > 1:
                text.append("  ")
            mark = STATE_MARKS.get(state, "○")
            done = OUTCOME_MARKS.get(outcome, "")
            label = f" {number} {name} {mark} {state}{f' {done}' if done else ''} "
            text.append(label, style="reverse bold" if name == shown else "")
        self.update(text)


class Timeline(DataTable[Text]):
    DEFAULT_CSS = "Timeline { height: 100%; }"
    WIDTHS = {
        "#": 2,
        "time": 8,
        "change": 12,
        "outcome": 18,
        "rollout": 13,
        "apply": 6,
        "render": 6,
    }
    # Narrower than WIDE_ENOUGH (an 80-column terminal), the table keeps what a deploy
    # did and how long it took; apply and render times go (the help says so).
    COMPACT_WIDTHS = {"#": 2, "time": 8, "change": 8, "outcome": 12, "rollout": 7}
    WIDE_ENOUGH = 78
    COLUMNS = tuple(WIDTHS)
    KEPT_ROWS = 200

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.compact = False
        self.cycle_rows: dict[str, CycleRow] = {}
        self._set_columns()

    def on_resize(self) -> None:
        compact = 0 < self.size.width < self.WIDE_ENOUGH
        if compact != self.compact:
            self.compact = compact
            self.clear(columns=True)
            self._set_columns()
            for row in self.cycle_rows.values():
                self._put(row)

    def _set_columns(self) -> None:
        for column, width in (self.COMPACT_WIDTHS if self.compact else self.WIDTHS).items():
            self.add_column(column, key=column, width=width)

    def replace(self, rows: Iterable[CycleRow]) -> None:
        """Another workflow's rows (several in the session)."""
        self.clear()
        self.cycle_rows = {}
        for row in rows:
            self.show(row)

    def show(self, row: CycleRow) -> None:
        key = str(row.number)
        self.cycle_rows[key] = row
        if len(self.cycle_rows) > self.KEPT_ROWS:
            del self.cycle_rows[next(iter(self.cycle_rows))]
        self._put(row)

    def _put(self, row: CycleRow) -> None:
        style = ROW_STYLE.get(row.state, "")
        values = {
            "#": cell(str(row.number)),
            "time": cell(row.time),
            "change": cell(row.change),
            "outcome": cell(row.result, style),
            # compact: the outcome says Ready already; the rollout column, how long
            "rollout": cell(row.rollout.removeprefix("Ready ") if self.compact else row.rollout),
            "apply": cell(row.apply),
            "render": cell(row.render),
        }
        columns = tuple(self.COMPACT_WIDTHS if self.compact else self.WIDTHS)
        key = str(row.number)
        if key in self.rows:
            for column in columns:
                self.update_cell(key, column, values[column])
        else:
            self.add_row(*(values[column] for column in columns), key=key)
            if self.row_count > self.KEPT_ROWS:
                self.remove_row(next(iter(self.rows)))
            self.move_cursor(row=self.row_count - 1)


def fit_pod_name(name: str, width: int) -> str:
    """A pod name in `width` cells: whole when it fits, else its distinct end.

    A Deployment's pod is `<deployment>-<template hash>-<suffix>`; the deployment is the
    workflow (in the header), so `…-<hash>-<suffix>`, then `…-<suffix>` (what the log
    lines show) say which pod without cutting a part in the middle."""
    if len(name) <= width:
        return name
    parts = name.split("-")
    for keep in (2, 1):
        if len(parts) > keep:
            short = "…-" + "-".join(parts[-keep:])
            if len(short) <= width:
                return short
    return name[: max(width - 1, 0)] + "…"


class PodPanel(Static):
    LABEL = 9  # "serving  ", "rolling  "
    shown: tuple[PodView, list[str]] | None = None  # what show() was last given

    def on_resize(self) -> None:
        if self.shown is not None:
            self.show(*self.shown)

    def show(self, view: PodView, files: list[str]) -> None:
        self.shown = (view, files)
        room = max(self.content_size.width - self.LABEL, 8) if self.content_size.width else 64

        def pod(name: str) -> str:
            return fit_pod_name(name, room)

        text = Text()
        text.append("serving  ", style="dim")
        text.append(pod(view.serving) if view.serving else "—", style="bold")
        if view.serving_status:
            text.append(f"  {view.serving_status}", style="green")
        if view.serving_restarts:
            text.append(f", {view.serving_restarts}", style="dark_orange")
        text.append("\n")
        if view.rolling:
            failed = view.rolling_status.startswith("✗")
            text.append("rolling  ", style="dim")
            text.append(pod(view.rolling), style="bold")
            text.append(f"  {view.rolling_status}\n", style="red" if failed else "dark_orange")
        if view.replaced:
            text.append(f"replaced {pod(view.replaced)}\n", style="dim")
        if files:
            text.append(f"code     {fit_files(files, room)}\n", style="dim")
        for note in view.notes[-4:]:
            text.append(f"• {note}\n", style="dark_orange")
        self.update(text)


def fit_files(files: list[str], width: int) -> str:
    """The changed files on one line of `width` cells: as many names as fit, then how
    many more (a long list filled a small panel and pushed its border out)."""
    shown: list[str] = []
    if files and len(files[0]) + (3 if len(files) > 1 else 0) > width:
        rest = f" +{len(files) - 1}" if len(files) > 1 else ""
        return files[0][: max(width - len(rest) - 1, 1)] + "…" + rest
    for number, name in enumerate(files):
        more = len(files) - number - 1
        candidate = ", ".join([*shown, name]) + (f" +{more}" if more else "")
        if len(candidate) > width and shown:
            return ", ".join(shown) + f" +{len(files) - len(shown)}"
        shown.append(name)
    return ", ".join(shown)


class ProblemsPanel(Static):
    def show(self, lines: list[str]) -> None:
        self.display = bool(lines)
        self.update(Text("\n".join(lines), style="red"))


class LogView(Log):
    """The pods' logs: bounded, with a filter, following the end unless scrolled up.

    Whether to follow is decided here, not by Textual's Log: it follows only when the view
    is at the end at the moment of a write, which a flood pruning the 10,000-line bound or
    a resize could make untrue for good (seen: following stopped at line 21,125 of a
    100,000-line flood, and after shrinking the terminal). Here the view follows until the
    user scrolls away from the end, and again once they come back to it."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LOG_LINES, auto_scroll=False, **kwargs)  # type: ignore[arg-type]
        self.lines_kept: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self.pattern: re.Pattern[str] | None = None
        self.following = True

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self.following = new_value >= self.max_scroll_y

    def add(self, lines: list[str]) -> None:
        self.lines_kept.extend(lines)
        shown = [line for line in lines if self.matches(line)]
        if shown:
            follow = self.following
            self.write_lines(shown)
            if follow:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
                self.following = True

    def on_resize(self) -> None:
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    @work(thread=True, exit_on_error=False)
    def _update_size(self, updates: int, lines: list[str]) -> None:
        """Textual's Log measures new lines' width on a thread, then hands it to the app;
        when the app is gone meanwhile (pdwatch quitting while lines arrive), its worker
        failed with NoActiveAppError and the app ended on that traceback. Here the width
        is dropped instead: there is nothing left to resize."""
        if not lines:
            return
        width = max(cell_len(self._process_line(line)) for line in lines)
        try:
            self.app.call_from_thread(self._update_maximum_width, updates, width)
        except RuntimeError:  # NoActiveAppError (detached), or the app is not running
            return

    def matches(self, line: str) -> bool:
        return self.pattern is None or bool(self.pattern.search(line))

    def set_filter(self, text: str) -> None:
        self.pattern = re.compile(re.escape(text), re.I) if text else None
        self.clear()
        self.write_lines([line for line in self.lines_kept if self.matches(line)])
        self.scroll_end(animate=False, immediate=True, x_axis=False)
        self.following = True

    def clear_all(self) -> None:
        self.lines_kept.clear()
        self.clear()

    def replace(self, lines: list[str]) -> None:
        """Another workflow's lines (several in the session), the filter kept."""
        self.clear_all()
        self.following = True
        self.add(lines)
