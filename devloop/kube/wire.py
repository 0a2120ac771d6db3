"""Server-side-apply bodies written so that the API server reads back every character.

The API server parses an apply body as YAML (sigs.k8s.io/yaml over go-yaml v2), even when
it is JSON text. The official client serialises a dict body with `json.dumps`, which
escapes everything non-ASCII; a character above U+FFFF (an emoji in a node file) becomes
a surrogate-pair escape, which go-yaml refuses with 400 "found invalid Unicode character
escape code" (gopkg.in/yaml.v2 scannerc.go, yaml_parser_scan_flow_scalar). Raw, go-yaml
refuses DEL, the C1 controls and U+FFFE/U+FFFF ("control characters are not allowed",
readerc.go, yaml_parser_update_buffer) and reads NEL (U+0085), LS and PS as line breaks,
which a quoted scalar folds.

So the body is JSON syntax (a flow mapping go-yaml reads as such) with every other
character raw in UTF-8, and a `\\uXXXX` escape for exactly the characters go-yaml must not
see raw. JSON already escapes `"`, `\\` and the C0 controls.
"""

from __future__ import annotations

import json
import re
from typing import Any

# DEL and C1 (NEL among them), LS, PS, the BOM (never a problem inside a document, escaped
# so that no reader can take it for one), and the two non-characters U+FFFE and U+FFFF.
_NOT_RAW = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def apply_body(manifest: dict[str, Any]) -> bytes:
    """The bytes to PATCH with `application/apply-patch+yaml`."""
    text = json.dumps(manifest, ensure_ascii=False, separators=(",", ":"))
    return _NOT_RAW.sub(_escape, text).encode("utf-8")
