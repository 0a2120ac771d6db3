"""Benchmarks (`python3 dev.py bench`). The suite grows with the issues; today: render + hash.

Prints a table and writes bench/results.json. Figures are measured here, never asserted in tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devloop.render import Bundle, render  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def make_workflow(root: Path, n_files: int, bytes_per_file: int) -> Path:
    nodes = "".join(f"  n{i}:\n    path: ./nodes/n{i}.ts\n" for i in range(n_files))
    (root / "nodes").mkdir(parents=True)
    (root / "workflow.yaml").write_text(
        f'name: bench\nversion: "1.0"\ntriggers:\n  - type: manual\nnodes:\n{nodes}'
    )
    body = ("// generated\n" + "x" * 70 + "\n") * max(1, bytes_per_file // 84)
    for i in range(n_files):
        (root / "nodes" / f"n{i}.ts").write_text(body)
    return root


def time_render(root: Path, repeat: int = 15) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = render(root)
        samples.append((time.perf_counter() - t0) * 1000)
        assert isinstance(result, Bundle), result
    return {"p50_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2),
            "code_bytes": result.code_bytes}


def main() -> None:
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, size in [(10, 1000), (100, 1000), (500, 1700)]:
            root = make_workflow(Path(tmp) / f"wf{n}", n, size)
            figures[f"render_{n}_files"] = time_render(root)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "devloop", "--help"], capture_output=True, check=True)
    figures["help_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    results = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "figures": figures,
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for name, value in figures.items():
        print(f"{name:24} {value}")


if __name__ == "__main__":
    main()
