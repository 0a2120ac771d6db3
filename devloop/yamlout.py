"""Manifests → YAML text that reads well and round-trips byte for byte.

Multi-line strings use the literal block style when PyYAML can represent them
exactly that way; it falls back to double quotes (with escapes) for text a
block cannot carry, such as CR, tabs or trailing spaces. Never templated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_all(documents: Iterable[dict[str, Any]]) -> str:
    return yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        explicit_start=True,
        width=2**16,
    )
