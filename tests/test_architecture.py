"""The import boundary of the embedded cluster stays complete: every module of pdwatch is
among those devloop.sim may not import (import-linter checks the imports in `dev.py lint`;
this checks that its list keeps up with new modules)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import devloop

ROOT = Path(__file__).parent.parent


def test_every_pdwatch_module_is_forbidden_to_the_embedded_cluster() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["source_modules"] == ["devloop.sim"]
    modules = {
        f"devloop.{m.name}"
        for m in pkgutil.iter_modules(devloop.__path__)
        if m.name not in ("sim", "__main__")
    }
    assert modules == set(contract["forbidden_modules"])
