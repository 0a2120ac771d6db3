"""`python3 dev.py mutate`: a mutation run (mutmut) over the pure decision modules that
pyproject.toml's [tool.mutmut] names, with the fast table tests it names, then the share
of mutants killed per module. A survivor is a change to the code no test noticed: read it
with `.venv/bin/mutmut show NAME` (listed by `.venv/bin/mutmut results`).
"""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"
RESULT = re.compile(r"\s*(devloop[\w.]*?)\.x[ǁ_]\w+?__mutmut_\d+: (.+)")


def summary(results: str) -> list[str]:
    """One line per module and one for all: killed of all mutants (a mutant no selected
    test reaches counts as not killed)."""
    modules: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in results.splitlines():
        found = RESULT.match(line)
        if found:
            modules[found[1]][found[2].strip()] += 1
    lines, everything = [], collections.Counter[str]()
    for name, counts in sorted(modules.items()):
        everything.update(counts)
        lines.append(described(name, counts))
    lines.append(described("all", everything))
    return lines


def described(name: str, counts: collections.Counter[str]) -> str:
    total = sum(counts.values())
    killed = counts["killed"]
    rate = f"{killed / total:.1%}" if total else "—"
    others = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if state != "killed")
    return f"{name}: {killed} of {total} mutants killed ({rate}){'; ' + others if others else ''}"


def main() -> int:
    run = subprocess.run([str(MUTMUT), "run"], cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        return run.returncode
    results = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    print("\n".join(summary(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
