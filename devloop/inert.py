"""Text from outside (pod logs, file names, cluster messages, source lines) made inert
before it reaches a terminal: every control character, and the characters that reorder or
break lines (bidi overrides, U+2028/U+2029), is shown as a visible escape (`\\x1b`,
`\\u202e`), so an OSC sequence in a log line cannot set the title or write the clipboard,
and a file name with a newline cannot forge an output line.

Applied at the edges that print: to every event before a view sees it (`event`), and to
the few texts printed without one (`text`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, TypeVar

# C0 controls but tab, DEL, C1 controls, line/paragraph separators, bidi embeddings,
# overrides and isolates, the BOM.
_UNSAFE = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_LINE = re.compile(f"[{_UNSAFE}]")
_TEXT = re.compile(f"[{_UNSAFE.replace(chr(10) + '-', chr(11) + '-')}]")  # keeps \n

T = TypeVar("T")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def line(value: str) -> str:
    """One line of untrusted text, newlines included, made inert."""
    return _LINE.sub(_visible, value) if _LINE.search(value) else value


def text(value: str) -> str:
    """Untrusted text of several lines: newlines kept, everything else made inert."""
    return _TEXT.sub(_visible, value) if _TEXT.search(value) else value


def value(item: T) -> T:
    """Every string inside `item` (tuples, lists, dicts, dataclasses) made inert."""
    result: Any
    if isinstance(item, str):
        result = line(item)
    elif isinstance(item, tuple):
        made = tuple(value(x) for x in item)
        result = item if made == item else made
    elif isinstance(item, list):
        result = [value(x) for x in item]
    elif isinstance(item, dict):
        result = {value(k): value(v) for k, v in item.items()}
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        changes = {}
        for f in dataclasses.fields(item):
            if f.init:
                old = getattr(item, f.name)
                new = value(old)
                if new is not old and new != old:
                    changes[f.name] = new
        result = dataclasses.replace(item, **changes) if changes else item
    else:
        result = item
    return result  # type: ignore[no-any-return]


event = value
