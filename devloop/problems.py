"""A problem found in the user's files: what is wrong, and where (file, line, column).

Errors stop a deploy; warnings and notes are shown and the deploy goes on. `source` is the
offending line as it was read, for the UI to show beside the message; it is never set for
a secrets file, whose lines must not be printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR, WARNING, NOTE = "error", "warning", "note"
SOURCE_MAX = 160


@dataclass(frozen=True, order=True)
class Problem:
    """One finding in the user's input; `line` and `column` are 1-based when known."""

    file: str
    message: str
    line: int | None = None
    column: int | None = None
    severity: str = ERROR
    source: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


def source_line(text: str, line: int | None) -> str | None:
    """Line `line` (1-based) of `text`, cut to a readable length."""
    if line is None or line < 1:
        return None
    lines = text.split("\n")
    if line > len(lines):
        return None
    shown = lines[line - 1].rstrip("\r")
    return shown if len(shown) <= SOURCE_MAX else shown[:SOURCE_MAX] + "…"


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.is_error]
