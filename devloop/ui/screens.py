"""Modal screens: a titled block of text (run result, diff, help), closed with Escape."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class TextScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    TextScreen { align: center middle; }
    TextScreen > VerticalScroll {
        width: 90%; height: 80%; border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, title: str, body: str, lexer: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.lexer = lexer

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = self.title_text
            scroll.border_subtitle = "Esc to close"
            if self.lexer:
                yield Static(Syntax(self.body, self.lexer, word_wrap=True, theme="ansi_dark"))
            else:
                yield Static(Text(self.body))
