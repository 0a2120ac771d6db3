"""The workflow's local secrets → the data of the `<wf>-secrets` Secret.

Sources, as the reference CLI reads them: `.secrets.yaml` (each top-level key
becomes a Secret key whose value is that subtree as JSON) or `.secrets/` (one
file per key). Messages never quote a secret's value: YAML errors give only
the position.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, ScalarNode

from devloop import names
from devloop.problems import Problem
from devloop.yamlsource import LOADER, Source, duplicate_keys, to_python

SECRETS_FILE = ".secrets.yaml"
SECRETS_DIR = ".secrets"
SECRET_MAX_BYTES = 1024 * 1024


def read_secrets(root: Path, display_root: str) -> tuple[dict[str, bytes] | None, list[Problem]]:
    """The secret keys and raw values, None when the workflow has no local secrets."""
    file, folder = root / SECRETS_FILE, root / SECRETS_DIR
    shown_file = os.path.join(display_root, SECRETS_FILE)
    if file.exists() and folder.exists():
        return None, [
            Problem(
                shown_file,
                f"both {SECRETS_FILE} and {SECRETS_DIR}/ exist; keep "
                "one of them so it is clear which secrets deploy",
            )
        ]
    if file.exists():
        data, problems = _from_yaml(file, shown_file)
    elif folder.is_dir():
        data, problems = _from_dir(folder, os.path.join(display_root, SECRETS_DIR))
    else:
        return None, []
    total = sum(len(k) + len(v) for k, v in data.items())
    if not problems and total > SECRET_MAX_BYTES:
        problems.append(
            Problem(
                shown_file,
                f"secrets total {total} bytes, above the "
                f"Kubernetes limit of {SECRET_MAX_BYTES} bytes",
            )
        )
    return (data if not problems else None), problems


def _from_yaml(path: Path, shown: str) -> tuple[dict[str, bytes], list[Problem]]:
    source = Source(shown)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=LOADER)
    except UnicodeDecodeError:
        return {}, [Problem(shown, "is not valid UTF-8")]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        # Only the position: the offending text may be a secret.
        return {}, [
            Problem(
                shown,
                "YAML syntax error",
                mark.line + 1 if mark else None,
                mark.column + 1 if mark else None,
            )
        ]
    except yaml.YAMLError:
        return {}, [Problem(shown, "YAML error")]
    if root is None:
        return {}, []
    if not isinstance(root, MappingNode):
        return {}, [source.problem(root, "top level must be a mapping of secret name to value")]
    problems = duplicate_keys(root, source)
    data: dict[str, bytes] = {}
    for key, value in root.value:
        if not isinstance(key, ScalarNode):
            problems.append(source.problem(key, "secret names must be plain strings"))
            continue
        errors = names.config_map_key(key.value)
        if errors:
            problems.append(
                source.problem(
                    key, f"secret name {key.value!r} cannot be a Secret key: {'; '.join(errors)}"
                )
            )
            continue
        try:
            encoded = json.dumps(to_python(value), ensure_ascii=False, default=str)
        except (ValueError, TypeError, yaml.YAMLError):
            problems.append(source.problem(key, f"secret {key.value!r} cannot be written as JSON"))
            continue
        data[key.value] = encoded.encode("utf-8")
    return data, problems


def _from_dir(folder: Path, shown: str) -> tuple[dict[str, bytes], list[Problem]]:
    data: dict[str, bytes] = {}
    problems = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        where = os.path.join(shown, entry.name)
        if not entry.is_file():
            problems.append(Problem(where, "secrets must be files, one per key"))
            continue
        errors = names.config_map_key(entry.name)
        if errors:
            problems.append(
                Problem(where, f"file name cannot be a Secret key: {'; '.join(errors)}")
            )
            continue
        data[entry.name] = entry.read_bytes()
    return data, problems


def encode(data: dict[str, bytes]) -> dict[str, str]:
    """Secret `data` values are base64 of the bytes."""
    return {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())}
