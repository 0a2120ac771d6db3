"""YAML read with positions and with scalars kept as the user wrote them.

PyYAML's plain `safe_load` turns `version: 1.10` into the float 1.1 and forgets
where every value came from. Composing the node graph keeps both the raw text
of each scalar and its line and column, so validation can quote the user's own
text and point at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from devloop.problems import Problem

# libyaml when present: the same nodes and marks, several times faster on large files.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Source:
    """One YAML file being read, so every problem names it."""

    file: str

    def problem(self, node: Node | None, message: str) -> Problem:
        if node is None:
            return Problem(self.file, message)
        mark = node.start_mark
        return Problem(self.file, message, mark.line + 1, mark.column + 1)


def compose(text: str, source: Source) -> tuple[Node | None, list[Problem]]:
    """Parse one YAML document into its node graph, or report the syntax error's line."""
    try:
        node = yaml.compose(text, Loader=LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            what = f"{exc.context}: {exc.problem}"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        return None, [Problem(source.file, f"YAML syntax error: {what}", line, column)]
    except yaml.YAMLError as exc:  # e.g. a reader error on a control character
        return None, [Problem(source.file, f"YAML error: {exc}")]
    return node, []


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


def to_python(node: Node) -> Any:
    """The plain Python value of a subtree (ints, floats, lists, dicts) as safe_load gives it."""
    constructor = yaml.SafeLoader("")
    return constructor.construct_object(node, deep=True)


NULL_TAG = "tag:yaml.org,2002:null"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == NULL_TAG
