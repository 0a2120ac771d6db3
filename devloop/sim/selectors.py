"""Label and field selectors in their query-string form (`app=x,tier in (a,b),!beta`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devloop.sim.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_REQUIREMENT = re.compile(
    r"""^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*
        (?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9_.-]*)
          |\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$""",
    re.X,
)


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()]


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: `key op values`."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "=":
            return value in self.values
        if self.op == "!=":
            return value not in self.values
        if self.op == "in":
            return value in self.values
        if self.op == "notin":
            return value not in self.values
        if self.op == "exists":
            return self.key in labels
        return self.key not in labels


def parse_requirement(part: str) -> Requirement:
    m = _REQUIREMENT.match(part)
    if not m or (m["neg"] and (m["op"] or m["setop"])):
        raise bad_request(f"unable to parse requirement: {part!r}")
    key = m["key"]
    if m["op"]:
        return Requirement(key, "!=" if m["op"] == "!=" else "=", frozenset({m["value"]}))
    if m["setop"]:
        values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
        return Requirement(key, m["setop"], values)
    return Requirement(key, "!" if m["neg"] else "exists")


def label_matcher(selector: str | None) -> Matcher:
    requirements = [parse_requirement(p) for p in _split(selector or "")]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements)

    return match


def field_matcher(selector: str | None) -> Matcher:
    """Equality on dotted paths (`metadata.name=x`, `involvedObject.uid=…`, `status.phase!=…`)."""
    if not selector:
        return lambda obj: True
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for part in _split(selector):
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: {selector!r}; can't understand {part!r}")
        path, op, value = m.groups()

        def test(obj: dict[str, Any], path: str = path, op: str = op, value: str = value) -> bool:
            current: Any = obj
            for key in path.split("."):
                current = current.get(key) if isinstance(current, dict) else None
            text = "" if current is None else str(current)
            return (text == value) if op in ("=", "==") else (text != value)

        tests.append(test)
    return lambda obj: all(t(obj) for t in tests)
