#!/usr/bin/env python3
"""Developer tasks that work on a fresh machine with nothing but Python 3.11+.

    python3 dev.py run     # pdwatch on an example workflow (embedded cluster; Ctrl-C or q ends it)
    python3 dev.py run DIR [OPTIONS]   # pdwatch on DIR; embedded unless a cluster is named
    python3 dev.py test    # the whole test suite, against the embedded cluster and then
                           # against Kubernetes' own control plane (when Go is here)
    python3 dev.py test --mode embedded|real [PYTEST ARGS]   # one of the two runs
    python3 dev.py controlplane --kubeconfig FILE   # that control plane, in the foreground
    python3 dev.py lint    # ruff + mypy + the embedded cluster's import boundary
    python3 dev.py bench   # benchmarks
    python3 dev.py mutate  # a mutation run over the pure decision modules (mutmut)

Creates `.venv` with the project and its dev dependencies on first use, and
again whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
    print(
        f"dev.py: installing pdwatch and its dev dependencies into {VENV} (once; about a "
        "minute on a fresh machine, then never again until pyproject.toml changes)",
        flush=True,
    )
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check"]
    subprocess.run([*pip, "-q", "--upgrade", "pip"], check=True)
    pip_with_progress([*pip, "-e", f"{ROOT}[dev]"])
    STAMP.write_text(wanted)


def pip_with_progress(cmd: list[str]) -> None:
    """pip's output as one short line per package it fetches, and its errors in full."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    kept: list[str] = []
    count = 0
    for line in proc.stdout:
        kept.append(line)
        if line.startswith("Collecting "):
            count += 1
            print(f"dev.py:   {count:3d} {line.split()[1]}", flush=True)
        elif line.startswith("Installing collected packages"):
            print(f"dev.py:   installing {count} packages", flush=True)
    if proc.wait() != 0:
        sys.stderr.write("".join(kept[-40:]))
        raise SystemExit(f"dev.py: pip failed (exit {proc.returncode}); its last lines above")


def run(*cmd: str, cwd: Path | None = ROOT) -> int:
    """The command's exit code. Ctrl-C reaches the command too (one process group): it
    ends as it does (pdwatch's cleanup, the control plane's shutdown) while this waits;
    subprocess.call would SIGKILL it mid-cleanup and print a traceback."""
    process = subprocess.Popen(list(cmd), cwd=cwd)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue


CLUSTER_OPTIONS = ("--embedded", "--kubeconfig", "--context")


def pdwatch_args(rest: list[str]) -> list[str]:
    """`dev.py run` means the embedded cluster unless the arguments name a cluster."""
    if not rest:
        return [str(ROOT / "examples" / "uptime-prober"), "--embedded"]
    named = any(a == o or a.startswith(o + "=") for a in rest for o in CLUSTER_OPTIONS)
    return rest if named else [*rest, "--embedded"]


NO_GO = (
    "dev.py: the run against Kubernetes' own control plane was skipped: no Go toolchain here "
    "(install Go >= 1.26 from https://go.dev/dl/ and put `go` on PATH; the next "
    "`python3 dev.py test` builds the control plane once, a few minutes, and runs it)"
)


NO_NETNS = (
    "dev.py: the run against Kubernetes' own control plane was skipped: its node needs root "
    "and iproute2 (`ip`) to give pods addresses of their own; run `sudo python3 dev.py test "
    "--mode real` for it"
)


def test_against_control_plane(args: list[str]) -> int:
    """The suite in real-cluster mode against etcd, kube-apiserver, controller-manager and
    scheduler built from Kubernetes' Go modules, with pdwatch's node (devloop.controlplane)."""
    if shutil.which("go") is None:
        print(NO_GO, flush=True)
        return 0
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None:
        # the node gives pods addresses in a network namespace of its own (the real API
        # server's proxy refuses loopback ones): that needs root and iproute2
        print(NO_NETNS, flush=True)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="pdwatch-dev-"))
    kubeconfig = scratch / "kubeconfig"
    log = (scratch / "controlplane.log").open("w")
    print("dev.py: starting Kubernetes' control plane (built once per machine)", flush=True)
    plane = subprocess.Popen(
        [
            str(PY),
            "-m",
            "devloop.controlplane",
            "--kubeconfig",
            str(kubeconfig),
            "--time-scale",
            "0.05",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # Up means its node is Ready too (the control plane says so once it is): a suite
        # started on the kubeconfig alone found no node and skipped the node's tests.
        while "control plane up in" not in (scratch / "controlplane.log").read_text():
            if plane.poll() is not None:
                log.close()
                print((scratch / "controlplane.log").read_text()[-4000:], flush=True)
                print("dev.py: the control plane did not start", flush=True)
                return 1
            time.sleep(0.2)
        print(f"dev.py: the suite against it ({kubeconfig})", flush=True)
        env = {**os.environ, "PDWATCH_TEST_KUBECONFIG": str(kubeconfig)}
        return subprocess.call([str(PY), "-m", "pytest", *args], cwd=ROOT, env=env)
    finally:
        plane.terminate()
        try:
            plane.wait(60)
        except subprocess.TimeoutExpired:
            plane.kill()
            plane.wait()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def test(rest: list[str]) -> int:
    mode = "both"
    if rest[:1] == ["--mode"] and len(rest) > 1:
        mode, rest = rest[1], rest[2:]
    if os.environ.get("PDWATCH_TEST_KUBECONFIG"):  # the user's own cluster: that run only
        return run(str(PY), "-m", "pytest", *rest)
    results = {}
    if mode == "both":  # a few long tests run in the second pass only (tests/conftest.py)
        os.environ["PDWATCH_TEST_PASSES"] = "both"
    if mode in ("both", "embedded"):
        results["embedded cluster"] = run(str(PY), "-m", "pytest", *rest)
    if mode in ("both", "real"):
        results["real control plane"] = test_against_control_plane(rest)
    if len(results) > 1:
        said = "; ".join(f"{k}: {'passed' if v == 0 else 'FAILED'}" for k, v in results.items())
        print(f"dev.py: {said}", flush=True)
    return next((code for code in results.values() if code), 0)


def main(argv: list[str]) -> int:
    task = argv[0] if argv else "help"
    rest = argv[1:]
    if task not in {"run", "test", "lint", "bench", "controlplane", "mutate"}:
        print(__doc__)
        return 0 if task == "help" else 2
    ensure_venv()
    if task == "run":
        # The caller's directory: `dev.py run ./my-workflow` means their ./my-workflow.
        return run(str(BIN / "pdwatch"), *pdwatch_args(rest), cwd=None)
    if task == "test":
        return test(rest)
    if task == "controlplane":
        return run(str(PY), "-m", "devloop.controlplane", *rest, cwd=None)
    if task == "lint":
        return (
            run(str(BIN / "ruff"), "check", "devloop", "tests", "bench", "dev.py")
            or run(str(BIN / "ruff"), "format", "--check", "devloop", "tests", "bench", "dev.py")
            or run(str(BIN / "mypy"))
            or run(str(BIN / "lint-imports"))
        )
    if task == "mutate":
        return run(str(PY), "bench/mutation.py")
    return run(str(PY), "bench/run.py", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
