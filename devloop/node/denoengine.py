"""The engine container as a real process: the stand-in engine (engine-image/main.ts) under
Deno, with the pod's volumes written out as files, listening on the pod's own address.

What a container runtime would do, kept to what the engine can tell apart: the ConfigMap's
items and the Secret's keys as files in a directory of their own (read-only, as the
kubelet mounts them), the engine started with the workflow and secrets paths it is given
in a pod, its stdout and stderr as the container's log, its exit code as the container's.
Stopping it is SIGTERM, then SIGKILL after the grace period; it dies with the node
(PR_SET_PDEATHSIG), so no engine outlives a killed node.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devloop.node.logs import ContainerLog
from devloop.node.permissions import ENTRYPOINT_FLAGS, local_flags
from devloop.node.podnet import PodNetwork
from devloop.sim.engine import Exit

# The stand-in engine, shipped inside the package (package data; in the repository a link
# to engine-image/main.ts, which the image builds from) so an installed pdwatch has it too.
ENGINE_MAIN = Path(__file__).with_name("standin") / "main.ts"
PR_SET_PDEATHSIG = 1


def find_deno() -> str | None:
    """The `deno` wheel's binary, else one on PATH."""
    try:
        from deno import find_deno_bin  # type: ignore[import-untyped]

        return str(find_deno_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("deno")


_cached: set[str] = set()
_cache_lock = threading.Lock()


def ensure_cached(deno: str) -> None:
    """The stand-in's one dependency (npm:yaml) in Deno's cache, once per process, before
    the first engine starts: on a fresh machine the download takes seconds, during which
    an engine would not answer its probes (and its liveness probe would have it killed)."""
    with _cache_lock:
        if deno in _cached:
            return
        # offline and never cached: the engine's own start says why
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [deno, "cache", str(ENGINE_MAIN)],
                capture_output=True,
                timeout=300,
                env={**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"},
                check=False,
            )
        _cached.add(deno)


def engine_flavor(image: str) -> str:
    """Which engine an image is, for the stand-in's `--flavor`: a `tentacular-engine`
    image is the Tentacular engine (its banner, /health?detail=1, webhooks)."""
    name = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return "tentacular" if name.startswith("tentacular") else "pipedreamer"


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def write_volume(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """`files` (path inside the volume → content) under root, read-only as mounted."""
    for relative, content in files.items():
        target = (root / relative).resolve()
        if root.resolve() not in target.parents:
            raise ValueError(f"{relative!r} leaves the volume")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    return root


@dataclass
class DenoEngine:
    """One run of the engine container as a Deno process. `start()` spawns it; `exited()`
    is its exit; `stop(grace)` ends it as the kubelet does."""

    workflow: dict[str, str]  # the code volume: path under /app/workflow → text
    secrets: dict[str, bytes]  # the Secret volume: key → value
    log: ContainerLog
    network: PodNetwork
    address: str
    port: int
    deno: str
    # Deno's permissions as the container gives them (permissions.container_flags)
    flags: tuple[str, ...] = ENTRYPOINT_FLAGS
    config: str | None = None  # the deno.json mounted for the engine (an import map)
    flavor: str = "pipedreamer"  # engine_flavor(image)
    _dir: Path = field(init=False)
    _process: asyncio.subprocess.Process | None = None
    _pump: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="pdwatch-engine-"))

    def command(self) -> list[str]:
        workflow = write_volume(self._dir / "workflow", self.workflow)
        secrets = write_volume(self._dir / "secrets", self.secrets)
        flags = local_flags(self.flags, self._dir, f"{self.address}:{self.port}")
        if self.config is not None:
            engine_dir = write_volume(self._dir / "engine", {"deno.json": self.config})
            flags += ["--config", str(engine_dir / "deno.json")]
        engine = [
            self.deno,
            "run",
            *flags,
            str(ENGINE_MAIN),
            "--workflow",
            str(workflow / "workflow.yaml"),
            "--secrets",
            str(secrets),
            "--port",
            str(self.port),
            # Its own address: the node's pods share one network namespace, where an
            # engine on 0.0.0.0 would answer for every pod (another pod's probes too).
            "--hostname",
            self.address,
            "--flavor",
            self.flavor,
        ]
        if self.network.namespace is not None:  # the pod's own network namespace
            return ["ip", "netns", "exec", self.network.namespace, *engine]
        return engine

    async def start(self) -> None:
        await asyncio.to_thread(ensure_cached, self.deno)
        env = {**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"}
        self._process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self._dir,
            env=env,
            preexec_fn=_die_with_parent,
        )
        self._pump = asyncio.create_task(self._read_output())

    async def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            self.log.append(raw.decode("utf-8", "replace").rstrip("\n"))

    async def exited(self) -> Exit:
        """The process's end, once its output is all in the log."""
        assert self._process is not None
        code = await self._process.wait()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        # A process killed by a signal exits, for the kubelet, with 128 + the signal.
        return Exit(128 - code if code < 0 else code)

    def kill(self) -> None:
        """SIGKILL at once (the node itself is stopping); the files go."""
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    async def stop(self, grace: float = 30.0) -> Exit | None:
        """SIGTERM, then SIGKILL after `grace` seconds; the files go."""
        process = self._process
        result = None
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            result = await self.exited()
        shutil.rmtree(self._dir, ignore_errors=True)
        return result
