"""YAML read with positions, with scalars kept as the user wrote them, and with bounds.

PyYAML's plain `safe_load` turns `version: 1.10` into the float 1.1 and forgets where
every value came from. Composing the node graph keeps both the raw text of each scalar
and its line and column, so validation can quote the user's own text and point at it.

A YAML file can also be hostile: aliases that expand a 3 KB file into billions of values,
nesting deep enough to exhaust the stack, tags that name Python objects. `check_shape`
walks the node graph once, without recursion, and refuses what is too deep, too large
once aliases are expanded, or tagged with anything but YAML's standard tags; only then
are values constructed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from devloop.problems import ERROR, Problem, source_line

# libyaml when present: the same nodes and marks, several times faster on large files.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_DEPTH = 64  # nesting levels of collections
MAX_VALUES = 100_000  # nodes visited once aliases are expanded
# Characters of scalars once aliases are expanded: a few long strings repeated by aliases
# pass MAX_VALUES (one 8,000-character anchor, 99,000 aliases: 792 MB of JSON). Twice the
# largest object these files can become (a Secret's or a ConfigMap's 1 MiB).
MAX_EXPANDED_CHARS = 2 * 1024 * 1024
STANDARD_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in (
        "str",
        "seq",
        "map",
        "null",
        "bool",
        "int",
        "float",
        "binary",
        "timestamp",
        "merge",
        "set",
        "omap",
        "pairs",
    )
}


UNCLOSED = {
    "while scanning a quoted scalar": "a quoted string is never closed (missing closing quote)",
    "while parsing a flow sequence": "a [ is never closed (missing ] or a comma)",
    "while parsing a flow mapping": "a { is never closed (missing } or a comma)",
}


@dataclass(frozen=True)
class Source:
    """One YAML file being read, so every problem names it. `text` lets problems carry
    the offending line; leave it out for a file whose lines must not be shown."""

    file: str
    text: str | None = None

    def problem(self, node: Node | None, message: str, severity: str = ERROR) -> Problem:
        if node is None:
            return Problem(self.file, message, severity=severity)
        mark = node.start_mark
        return self.at(mark.line + 1, mark.column + 1, message, severity)

    def at(self, line: int, column: int | None, message: str, severity: str = ERROR) -> Problem:
        shown = source_line(self.text, line) if self.text is not None else None
        return Problem(self.file, message, line, column, severity, shown)


def compose(text: str, source: Source) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document into its node graph, or report the syntax error's line."""
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            what = f"{exc.context}: {exc.problem}"
        if mark is None:
            return None, [Problem(source.file, f"YAML syntax error: {what}")]
        # An unterminated quote or bracket is reported by the parser where it gave up (the
        # end of the file); where it was opened is where the user must look.
        opened = UNCLOSED.get(exc.context or "")
        if opened and exc.context_mark is not None:
            mark = exc.context_mark
            what = opened
        return None, [source.at(mark.line + 1, mark.column + 1, f"YAML syntax error: {what}")]
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        return None, [Problem(source.file, f"YAML error: {_first_line(exc)}")]
    except RecursionError:
        return None, [Problem(source.file, f"nested more than {MAX_DEPTH} levels deep")]
    problems = check_shape(node, source) if node is not None else []
    return (None if problems else node), problems


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:200]


def check_shape(root: Node, source: Source) -> list[Problem]:
    """Depth, expanded size and tags, checked without recursion."""
    stack: list[tuple[Node, int]] = [(root, 1)]
    visited = chars = 0
    while stack:
        node, depth = stack.pop()
        visited += 1
        if isinstance(node, ScalarNode):
            chars += len(node.value)
        if chars > MAX_EXPANDED_CHARS:
            return [
                source.problem(
                    root,
                    f"expands to more than {MAX_EXPANDED_CHARS // 2**20} MiB of text (aliases "
                    "repeat what they name); write the values out",
                )
            ]
        if visited > MAX_VALUES:
            return [
                source.problem(
                    root,
                    f"expands to more than {MAX_VALUES:,} values (aliases repeat what they "
                    "name); write the values out",
                )
            ]
        if node.tag not in STANDARD_TAGS:
            tag = node.tag.removeprefix("tag:yaml.org,2002:")
            return [
                source.problem(
                    node,
                    f"unknown tag {tag!r}: only YAML's standard types are read (quote the "
                    "value if it is text)",
                )
            ]
        if isinstance(node, ScalarNode):
            continue
        if depth > MAX_DEPTH:
            return [source.problem(node, f"nested more than {MAX_DEPTH} levels deep")]
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return []


def duplicate_keys(node: MappingNode, source: Source) -> list[Problem]:
    """YAML allows duplicate keys silently; a later one would hide the earlier one."""
    seen: set[str] = set()
    problems = []
    for key, _ in node.value:
        if isinstance(key, ScalarNode):
            if key.value in seen:
                problems.append(source.problem(key, f"duplicate key {key.value!r}"))
            seen.add(key.value)
    return problems


class UnreadableValue(Exception):
    """A value that cannot be constructed (e.g. `!!int abc`), at its node."""

    def __init__(self, node: Node | None, message: str) -> None:
        super().__init__(message)
        self.node = node


def to_python(node: Node) -> Any:
    """The plain Python value of a subtree (ints, floats, lists, dicts) as safe_load gives
    it. Only for a graph that passed check_shape (so it is bounded); raises UnreadableValue."""
    constructor = yaml.SafeLoader("")
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.MarkedYAMLError as exc:
        raise UnreadableValue(node, exc.problem or "cannot be read") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        raise UnreadableValue(node, _first_line(exc)) from None


NULL_TAG = "tag:yaml.org,2002:null"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG
