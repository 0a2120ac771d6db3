"""Apply bodies read as the API server reads them: YAML, through sigs.k8s.io/yaml over
go-yaml v2, even when the text is JSON.

k8s.io/apiserver pkg/endpoints/handlers/patch.go (the apply patcher) answers a body
go-yaml cannot read with 400 BadRequest "error decoding patch: <err>", where
sigs.k8s.io/yaml wraps go-yaml's error as "error converting YAML to JSON: yaml: [line N:
]<problem>" (checked against kube-apiserver v1.37.2 by tests/test_wire.py). go-yaml's
parser.fail() names a line only when the error's mark is past the first line (0-based
line L > 0): L+1 for a scanner error, L for a parser error; on the first line it falls
back to the context mark, usually also the first line: no line at all.

What go-yaml v2 refuses or changes, and how this module does the same:
- readerc.go, yaml_parser_update_buffer: only #x9, #xA, #xD, #x20-#x7E, #x85,
  #xA0-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF may appear raw; anything else is
  "control characters are not allowed" (a reader error: no line). Checked here before
  parsing. PyYAML's reader accepts exactly the same set.
- scannerc.go, yaml_parser_scan_flow_scalar: a `\\u`/`\\U` escape of U+D800-U+DFFF (half
  of a JSON surrogate pair, as `json.dumps` writes an emoji) is "found invalid Unicode
  character escape code" (a scanner error: with its line past the first). PyYAML decodes
  such an escape into a lone surrogate instead, so a parsed string holding one is refused
  here; valid UTF-8 text can hold no surrogate, so it can only have come from an escape.
- A raw NEL inside a quoted scalar is a line break and is folded to a space; LS and PS are
  kept. PyYAML (like libyaml, which go-yaml ports) does the same, so parsing is left to it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from devloop.sim.errors import ApiError, bad_request

_NOT_ALLOWED = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE_ESCAPE = re.compile(
    r"\\(u[dD][89a-fA-F][0-9a-fA-F]{2}|U0000[dD][89a-fA-F][0-9a-fA-F]{2})"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _refuse(problem: str) -> ApiError:
    return bad_request(f"error decoding patch: error converting YAML to JSON: yaml: {problem}")


def _where(line: int, scanner: bool, context_line: int = 0) -> str:
    """go-yaml v2 yaml.go parser.fail(): the line named for a 0-based mark line."""
    if line != 0:
        return f"line {line + 1 if scanner else line}: "
    return f"line {context_line}: " if context_line != 0 else ""


def decode(raw: bytes) -> Any:
    """The value of an apply body, or the 400 the API server would answer."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refuse("invalid leading UTF-8 octet") from None
    if _NOT_ALLOWED.search(text):
        raise _refuse("control characters are not allowed")
    try:
        value = yaml.load(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark, exc.context_mark
        where = _where(
            mark.line if mark is not None else 0,
            isinstance(exc, yaml.scanner.ScannerError),
            context.line if context is not None else 0,
        )
        raise _refuse(f"{where}{exc.problem or 'unknown problem parsing YAML content'}") from None
    except yaml.YAMLError:
        raise _refuse("unknown problem parsing YAML content") from None
    if _holds_surrogate(value):
        found = _SURROGATE_ESCAPE.search(text)
        line = text.count("\n", 0, found.start()) if found else 0
        raise _refuse(f"{_where(line, scanner=True)}found invalid Unicode character escape code")
    return value


def _holds_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
