"""The import boundary of the cluster side stays complete: every module of pdwatch is among
those devloop.sim, devloop.node and devloop.controlplane may not import (import-linter
checks the imports in `dev.py lint`; this checks that its list keeps up with new modules)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import devloop

ROOT = Path(__file__).parent.parent


CLUSTER_SIDE = ("sim", "node", "controlplane")


def test_every_pdwatch_module_is_forbidden_to_the_cluster_side() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["source_modules"] == [f"devloop.{name}" for name in CLUSTER_SIDE]
    modules = {
        f"devloop.{m.name}"
        for m in pkgutil.iter_modules(devloop.__path__)
        if m.name not in (*CLUSTER_SIDE, "__main__")
    }
    assert modules == set(contract["forbidden_modules"])
