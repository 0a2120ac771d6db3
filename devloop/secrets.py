"""The workflow's local secrets → the data of the `<wf>-secrets` Secret, as the engine
reads them.

Sources, as the reference CLI reads them: `.secrets.yaml` (each top-level key becomes a
Secret key) or `.secrets/` (one file per key, its bytes as they are). The engine turns
every file in /app/secrets into `ctx.secrets[key]`: parsed as JSON when that gives an
object, otherwise `{value: "<trimmed text>"}` (REFERENCE.md §2). So a top-level scalar
is stored as its text (JSON-quoted, a node would see the quotes), `!!binary` as its
bytes, and a mapping or list as compact JSON.

Nothing here ever quotes a secret: messages name the file, the line and what is wrong. A
key of `.secrets.yaml` that is not a valid key is not quoted either (a typo such as
`API_KEY=sk_live…:` puts the value in the key). Files are read through safefiles: inside
the directory, regular, bounded.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from devloop import names
from devloop.problems import Problem
from devloop.safefiles import Refusal, identity, read_inside
from devloop.yamlsource import (
    NULL_TAG,
    Source,
    UnreadableValue,
    compose,
    to_python,
)

SECRETS_FILE = ".secrets.yaml"
SECRETS_DIR = ".secrets"
SECRET_MAX_BYTES = 1024 * 1024  # the API server's limit for a Secret's data
BINARY_TAG = "tag:yaml.org,2002:binary"


def secret_paths(root: Path) -> list[Path]:
    """The files secrets are read from, whether or not they can be read."""
    paths = [root / SECRETS_FILE]
    folder = root / SECRETS_DIR
    with contextlib.suppress(OSError):  # missing, no folder, unreadable: read_secrets says
        paths += [e for e in sorted(folder.iterdir()) if not e.name.startswith(".")]
    return paths


def secret_identities(root: Path) -> set[tuple[int, int]]:
    """(device, inode) of every secrets file: a code file that is one of them (a hard
    link) would ship the secrets in the ConfigMap."""
    found = {identity(p) for p in secret_paths(root)}
    return {i for i in found if i is not None}


def read_secrets(root: Path, display_root: str) -> tuple[dict[str, bytes] | None, list[Problem]]:
    """The secret keys and raw values, None when the workflow has no local secrets."""
    file, folder = root / SECRETS_FILE, root / SECRETS_DIR
    shown_file = os.path.join(display_root, SECRETS_FILE)
    has_file = os.path.lexists(file)
    if has_file and os.path.lexists(folder):
        return None, [
            Problem(
                shown_file,
                f"both {SECRETS_FILE} and {SECRETS_DIR}/ exist; keep "
                "one of them so it is clear which secrets deploy",
            )
        ]
    top = os.path.realpath(root)
    if has_file:
        data, problems = _from_yaml(file, shown_file, top)
    elif os.path.lexists(folder):
        data, problems = _from_dir(folder, os.path.join(display_root, SECRETS_DIR), top)
    else:
        return None, []
    total = sum(len(k) + len(v) for k, v in data.items())
    if not problems and total > SECRET_MAX_BYTES:
        problems.append(
            Problem(
                shown_file,
                f"secrets total {total:,} bytes, above the "
                f"Kubernetes limit of {SECRET_MAX_BYTES:,} bytes",
            )
        )
    return (data if not problems else None), problems


def secret_entries(
    path: Path, shown: str, top: str
) -> tuple[Source, list[tuple[ScalarNode, Node]], list[Problem]]:
    """A secrets YAML file's top-level (name, value) nodes whose names are valid Secret
    keys, and the problems of the file and of the other names, none quoting a value (the
    Source carries no text: a secrets file's lines are never shown)."""
    source = Source(shown)
    raw = read_inside(path, top, SECRET_MAX_BYTES)
    if isinstance(raw, Refusal):
        return source, [], [Problem(shown, raw.reason)]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return source, [], [Problem(shown, "is not valid UTF-8", line)]
    root, problems = compose(text, source)
    if problems:
        # Only where and what: PyYAML's wording is fixed text, but drop anything quoted.
        return (
            source,
            [],
            [Problem(p.file, _unquoted(p.message), p.line, p.column) for p in problems],
        )
    if root is None:
        return source, [], []
    if not isinstance(root, MappingNode):
        problem = source.problem(root, "top level must be a mapping of secret name to value")
        return source, [], [problem]
    problems = [
        source.problem(key, "a secret name is used twice") for key in _duplicate_nodes(root)
    ]
    entries: list[tuple[ScalarNode, Node]] = []
    for key, value in root.value:
        if not isinstance(key, ScalarNode):
            problems.append(source.problem(key, "secret names must be plain strings"))
        elif names.config_map_key(key.value):
            problems.append(
                source.problem(
                    key,
                    "this secret name is not a valid Secret key (letters, digits, '-', '_' "
                    "and '.' only, at most 253 characters); the name is not shown, in case "
                    "it holds a value",
                )
            )
        else:
            entries.append((key, value))
    return source, entries, problems


def _from_yaml(path: Path, shown: str, top: str) -> tuple[dict[str, bytes], list[Problem]]:
    source, entries, problems = secret_entries(path, shown, top)
    data: dict[str, bytes] = {}
    for key, value in entries:
        try:
            data[key.value] = secret_value(value)
        except UnreadableValue as exc:
            problems.append(source.problem(exc.node or value, "this value cannot be read"))
    return data, problems


def _duplicate_nodes(root: MappingNode) -> list[Node]:
    """Keys that repeat an earlier one (YAML would let the later one win silently)."""
    seen: set[str] = set()
    repeated: list[Node] = []
    for key, _ in root.value:
        if isinstance(key, ScalarNode):
            if key.value in seen:
                repeated.append(key)
            seen.add(key.value)
    return repeated


def _unquoted(message: str) -> str:
    """PyYAML names the character it stumbled on ("found character '\\t'"): drop quotes."""
    out, quoting = [], False
    for ch in message:
        if ch == "'":
            quoting = not quoting
            continue
        if not quoting:
            out.append(ch)
    return " ".join("".join(out).split())


def secret_value(node: Node) -> bytes:
    """What the engine should read for one top-level value (see the module docstring)."""
    if isinstance(node, ScalarNode):
        if node.tag == BINARY_TAG:
            value = to_python(node)
            assert isinstance(value, bytes)
            return value
        if node.tag == NULL_TAG:
            return b""
        return str(node.value).encode("utf-8")
    value = to_python(node)
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def _from_dir(folder: Path, shown: str, top: str) -> tuple[dict[str, bytes], list[Problem]]:
    if not os.path.isdir(folder) or os.path.islink(folder):
        where = os.path.realpath(folder)
        if not os.path.isdir(folder):
            return {}, [Problem(shown, "must be a directory of files, one per secret")]
        if not where.startswith(top + os.sep):
            return {}, [Problem(shown, f"is a link to {where}, outside the workflow directory")]
    data: dict[str, bytes] = {}
    problems = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        return {}, [Problem(shown, f"cannot be listed: {exc.strerror}")]
    for entry in entries:
        if entry.name.startswith("."):
            continue
        where = os.path.join(shown, entry.name)
        errors = names.config_map_key(entry.name)
        if errors:
            problems.append(
                Problem(where, f"file name cannot be a Secret key: {'; '.join(errors)}")
            )
            continue
        raw = read_inside(entry, top, SECRET_MAX_BYTES)
        if isinstance(raw, Refusal):
            problems.append(Problem(where, f"{raw.reason}; secrets must be files, one per key"))
            continue
        data[entry.name] = raw
    return data, problems


def encode(data: dict[str, bytes]) -> dict[str, str]:
    """Secret `data` values are base64 of the bytes."""
    return {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())}
