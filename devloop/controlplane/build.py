"""Kubernetes' control-plane commands built from their Go modules (the repository's
`controlplane/` module pins the release) into a cache outside the repository: built once
per machine and module version, reused after.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

MODULE = Path(__file__).resolve().parents[2] / "controlplane"
COMMANDS = {
    "etcd": "./etcd",
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
}
RELEASE = "v1.37.2"  # what /version reports: the release go.mod pins (hack/lib/version.sh)
HOW_TO_GET_GO = "install Go ≥ 1.26 (https://go.dev/dl/) and put `go` on PATH"


class BuildError(RuntimeError):
    """The control plane could not be built (no Go, or the build failed)."""


def go_binary() -> str | None:
    return shutil.which("go")


def cache_root() -> Path:
    base = os.environ.get("PDWATCH_CONTROLPLANE_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "pdwatch" / "controlplane"


def module_key(go: str) -> str:
    """What the binaries depend on: the module's files and the Go release."""
    digest = hashlib.sha256()
    for path in sorted(MODULE.rglob("*")):
        if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
            digest.update(str(path.relative_to(MODULE)).encode())
            digest.update(path.read_bytes())
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    digest.update(version.stdout.strip().encode())
    return digest.hexdigest()[:16]


def ldflags() -> str:
    """The version stamps Kubernetes' own build sets (hack/lib/version.sh), without debug
    symbols."""
    major, minor = RELEASE[1:].split(".")[:2]
    stamps = {
        "gitVersion": RELEASE,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{name}={value}" for name, value in stamps.items()]
    return " ".join(flags)


def binaries(directory: Path) -> dict[str, Path]:
    return {name: directory / name for name in COMMANDS}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per machine (two test runs starting together share it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(say: object = None) -> dict[str, Path]:
    """The binaries, building them first when this machine has none for this module.
    `say(text)` is told what happens (a build takes minutes the first time)."""
    speak = say if callable(say) else (lambda text: print(text, file=sys.stderr, flush=True))
    go = go_binary()
    if go is None:
        raise BuildError(f"no Go toolchain: {HOW_TO_GET_GO}")
    directory = cache_root() / module_key(go)
    wanted = binaries(directory)
    if all(p.exists() for p in wanted.values()):
        return wanted
    with _locked(cache_root() / "build.lock"):
        if all(p.exists() for p in wanted.values()):
            return wanted
        staging = directory.with_name(directory.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        speak(
            f"building {', '.join(COMMANDS)} from {MODULE.name}/go.mod into {directory} "
            "(once per machine; several minutes cold)"
        )
        began = time.monotonic()
        # no VCS stamp: a build from a tarball or a dirty tree must not fail on it
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false"}
        result = subprocess.run(
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                ldflags(),
                "-o",
                f"{staging}/",
                *COMMANDS.values(),
            ],
            cwd=MODULE,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BuildError(f"go build failed:\n{result.stderr[-4000:]}")
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
        speak(f"built the control plane in {time.monotonic() - began:.0f} s")
    return wanted
