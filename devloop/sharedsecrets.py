"""The Tentacular format's `.secrets.yaml`: every value a `$shared.<name>` reference,
resolved as its reference resolves it (TENTACULAR.md §5.1-§5.2).

The file named is `<root>/.secrets/<name>`, where root is the nearest folder at or above
the workflow with a `.git` entry or a `go.mod`. Its content is parsed as JSON first: an
object or array is written back as compact JSON with sorted keys (as Go writes it), a
string without its quotes, a number or boolean as its JSON text; anything else is the
text with surrounding white space trimmed.

Where pdwatch differs on purpose: with no root the reference deploys the literal text
`$shared.<name>` (every credential then fails at run time, silently); here it is an
error naming what is missing. A direct value is refused with the reference's own message:
the same file must deploy with the reference's CLI, and `--format pipedreamer` is there for
a workflow that keeps its values in the file.

Values are never shown: messages name the key, the reference and the file.
"""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from yaml.nodes import ScalarNode

from devloop.problems import Problem
from devloop.safefiles import Refusal, read_inside
from devloop.secrets import SECRET_MAX_BYTES, SECRETS_DIR, SECRETS_FILE, secret_entries

PREFIX = "$shared."
ROOT_MARKERS = (".git", "go.mod")


def repository_root(directory: Path) -> Path | None:
    """The nearest folder at or above `directory` holding `.git` (file or folder) or
    `go.mod`."""
    start = Path(os.path.abspath(directory))
    for candidate in (start, *start.parents):
        if any(os.path.lexists(candidate / marker) for marker in ROOT_MARKERS):
            return candidate
    return None


SHARED_FILES_MAX = 1000  # polled files: a .secrets/ folder is a handful


def shared_files(directory: Path) -> list[Path]:
    """The files of the repository's `.secrets/` that `$shared` references can name, to
    poll: editing one redeploys the Secret (they are outside the workflow directory)."""
    root = repository_root(directory)
    if root is None:
        return []
    found: list[Path] = []
    for folder, dirs, files in os.walk(root / SECRETS_DIR):
        dirs.sort()
        found += [Path(folder) / name for name in sorted(files)]
        if len(found) >= SHARED_FILES_MAX:
            return found[:SHARED_FILES_MAX]
    return found


def read_shared_secrets(
    directory: Path, display_root: str
) -> tuple[dict[str, bytes] | None, list[Problem]]:
    """The Secret's keys and resolved values; None when there is no `.secrets.yaml`."""
    path = directory / SECRETS_FILE
    shown = os.path.join(display_root, SECRETS_FILE)
    if not os.path.lexists(path):
        return None, []
    source, entries, problems = secret_entries(path, shown, os.path.realpath(directory))
    if not entries and not problems:  # empty: no Secret
        return None, []
    root = repository_root(directory)
    data: dict[str, bytes] = {}
    for key, value in entries:
        name = str(key.value)
        reference = value.value if isinstance(value, ScalarNode) else None
        if not isinstance(reference, str) or not reference.startswith(PREFIX):
            problems.append(
                source.problem(
                    value,
                    f"secret {json.dumps(name)} has a direct value; all secrets must use "
                    f"$shared.<name> references (e.g. $shared.{name}) (the Tentacular format; "
                    "--format pipedreamer deploys values written in the file)",
                )
            )
            continue
        resolved = _resolve(reference[len(PREFIX) :], root, directory)
        if isinstance(resolved, str):
            problems.append(source.problem(value, resolved))
        else:
            data[name] = resolved
    return (None if problems else data), problems


def _resolve(name: str, root: Path | None, directory: Path) -> bytes | str:
    """The value for `$shared.<name>`, or the problem (a str)."""
    if root is None:
        return (
            f"$shared.{name} cannot be resolved: no folder at or above {directory} has a .git "
            "or a go.mod, so there is no repository root whose .secrets/ holds it (the "
            "reference would deploy the literal text)"
        )
    folder = os.path.normpath(root / SECRETS_DIR)
    target = os.path.normpath(os.path.join(folder, name))
    if not name or not target.startswith(folder + os.sep):
        return f"shared secret name {json.dumps(name)} contains invalid path components"
    raw = read_inside(Path(target), os.path.realpath(folder), SECRET_MAX_BYTES)
    if isinstance(raw, Refusal):
        missing = not os.path.lexists(target)
        why = "" if missing else f" ({raw.reason})"
        return f'shared secret "$shared.{name}" referenced but not found at {target}{why}'
    return shared_value(raw)


def shared_value(raw: bytes) -> bytes:
    """The file's content as the reference stores it (see the module docstring)."""
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return raw.strip()
    if isinstance(value, str):
        return value.encode("utf-8")
    return go_json(value).encode("utf-8")


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes a decoded value: compact, map keys sorted, `<`,
    `>`, `&`, U+2028 and U+2029 escaped, numbers as float64 formats them."""
    if isinstance(value, dict):
        items = (f"{go_json(k)}:{go_json(v)}" for k, v in sorted(value.items()))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    text = json.dumps(value, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_float(number: float) -> str:
    """strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json chooses between them."""
    if math.isinf(number) or math.isnan(number):
        return "null"  # cannot come from JSON text
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, exponent = repr(number).replace("E", "e").split("e")
        sign, digits = exponent[0], exponent[1:].lstrip("+-").lstrip("0") or "0"
        if sign not in "+-":
            sign, digits = "+", exponent.lstrip("0") or "0"
        return f"{mantissa.removesuffix('.0')}e{sign}{digits.zfill(2)}"
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
