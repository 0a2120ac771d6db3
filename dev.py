#!/usr/bin/env python3
"""Developer tasks that work on a fresh machine with nothing but Python 3.11+.

    python3 dev.py run     # pdwatch on an example workflow (embedded cluster; Ctrl-C or q ends it)
    python3 dev.py run DIR [OPTIONS]   # pdwatch on DIR; embedded unless a cluster is named
    python3 dev.py test    # the whole test suite
    python3 dev.py lint    # ruff + mypy + the embedded cluster's import boundary
    python3 dev.py bench   # benchmarks

Creates `.venv` with the project and its dev dependencies on first use, and
again whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("PDWATCH_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".pdwatch-installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PY.exists():
        return
    if not PY.exists():
        print(f"dev.py: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing pdwatch and its dev dependencies", flush=True)
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*cmd: str, cwd: Path | None = ROOT) -> int:
    return subprocess.call(list(cmd), cwd=cwd)


CLUSTER_OPTIONS = ("--embedded", "--kubeconfig", "--context")


def pdwatch_args(rest: list[str]) -> list[str]:
    """`dev.py run` means the embedded cluster unless the arguments name a cluster."""
    if not rest:
        return [str(ROOT / "examples" / "uptime-prober"), "--embedded"]
    named = any(a == o or a.startswith(o + "=") for a in rest for o in CLUSTER_OPTIONS)
    return rest if named else [*rest, "--embedded"]


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    rest = argv[1:]
    if task not in {"run", "test", "lint", "bench"}:
        print(__doc__)
        return 0 if task == "help" else 2
    ensure_venv()
    if task == "run":
        # The caller's directory: `dev.py run ./my-workflow` means their ./my-workflow.
        return run(str(BIN / "pdwatch"), *pdwatch_args(rest), cwd=None)
    if task == "test":
        return run(str(PY), "-m", "pytest", *rest)
    if task == "lint":
        return (
            run(str(BIN / "ruff"), "check", "devloop", "tests", "bench", "dev.py")
            or run(str(BIN / "ruff"), "format", "--check", "devloop", "tests", "bench", "dev.py")
            or run(str(BIN / "mypy"))
            or run(str(BIN / "lint-imports"))
        )
    return run(str(PY), "bench/run.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
