"""Modal screens: a titled block of text (run result, diff, help), closed with Escape;
the deploy history; a yes/no question."""

from __future__ import annotations

from collections.abc import Callable

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from devloop import history
from devloop.history import Revision


class TextScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 90%; height: 80%; border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, body: str, lexer: str = "", preamble: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.lexer = lexer
        self.preamble = preamble  # plain lines above the body (what a run did)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc to close"
            if self.preamble:
                yield Static(Text(self.preamble + "\n"), id="preamble")
            if self.lexer:
                yield Static(Syntax(self.body, self.lexer, word_wrap=True, theme="ansi_dark"))
            else:
                yield Static(Text(self.body))


class HistoryScreen(ModalScreen[None]):
    """`h`: the recorded revisions, newest first, the live one marked. Enter shows a
    revision's code against what is live; `u` rolls back to it after a confirmation."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("u", "roll_back", "Roll back"),
    ]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical {
        width: 90%; height: 70%; border: round $accent; background: $surface;
    }
    """

    def __init__(
        self, revisions: list[Revision], live_hash: str | None, on_rollback: Callable[[int], None]
    ) -> None:
        super().__init__()
        self.revisions = revisions
        self.live = history.live_revision(revisions, live_hash)
        self.on_rollback = on_rollback

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "deploy history"
            table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns("", "rev", "deployed", "version", "hash", "changed")
            self._fill(box, table)
            yield table

    def _fill(self, box: Vertical, table: DataTable[str]) -> None:
        for r in self.revisions:
            marker = "live" if self.live is not None and r.number == self.live.number else ""
            changed = r.changed_text
            table.add_row(
                marker,
                str(r.number),
                r.deployed_at,
                r.version,
                r.short_hash,
                changed,
                key=str(r.number),
            )
        box.border_subtitle = (
            "Enter: diff with live · u: roll back · Esc: close"
            if self.revisions
            else "no deploy history yet: Esc to close"
        )

    def show(self, revisions: list[Revision], live_hash: str | None) -> None:
        """The history read again (a deploy was recorded while the screen was open)."""
        self.revisions = revisions
        self.live = history.live_revision(revisions, live_hash)
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        self._fill(self.query_one(Vertical), table)
        if self.revisions:
            table.move_cursor(row=min(max(row, 0), len(self.revisions) - 1))

    def selected(self) -> Revision | None:
        table = self.query_one(DataTable)
        if not self.revisions or table.cursor_row < 0:
            return None
        return self.revisions[min(table.cursor_row, len(self.revisions) - 1)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table takes Enter as selecting it)."""
        self.action_compare()

    def action_compare(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        if self.live is None:
            self.app.push_screen(TextScreen("diff", "No revision is live: nothing to compare."))
            return
        body = history.diff(self.live, chosen) or "Same code as the live revision."
        title = f"r{self.live.number} (live) → r{chosen.number}"
        self.app.push_screen(TextScreen(title, body, "diff"))

    def action_roll_back(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        if self.live is not None and chosen.number == self.live.number:
            self.notify(f"r{chosen.number} is live already: nothing to roll back", timeout=4)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.on_rollback(chosen.number)
                self.dismiss()

        question = f"Roll back to revision {chosen.number} ({chosen.short_hash})?"
        self.app.push_screen(ConfirmScreen(question), answered)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Static {
        width: auto; border: round $warning; background: $surface; padding: 1 2;
    }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.question}  y / n"))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
