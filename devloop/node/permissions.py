"""The Deno permissions an engine container runs with, as flags for the local process.

A Tentacular-era Deployment says its Deno flags in the container's `command: [deno]` and
`args: [run, --allow-net=…, …, engine/main.ts, …]`; without a command the image's
ENTRYPOINT applies (`--allow-net --allow-read=/app,/var/run/secrets --allow-write=/tmp
--allow-env`). The node runs the stand-in with the same permissions, so Deno refuses what
it would refuse in the pod (a node fetching a host its contract does not name, importing
from a host not allowed). Paths are the pod's: `/app` is where the node wrote the pod's
volumes; `/tmp` stays the host's (a node's own `/tmp/x` works, shared by the node's
pods); other paths are not on the node and are left out. The pod listens on
`0.0.0.0:8080`; here it is the pod's own address. The stand-in's YAML module (npm:yaml,
where the real engine uses std/yaml) reads two environment variables of its own: they are
allowed beside what the container allows.
"""

from __future__ import annotations

from pathlib import Path

ENTRYPOINT_FLAGS = (
    "--allow-net",
    "--allow-read=/app,/var/run/secrets",
    "--allow-write=/tmp",
    "--allow-env",
)
STAND_IN_ENV = ("LOG_TOKENS", "LOG_STREAM")
PERMISSIONS = {
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-import",
    "--allow-sys",
    "--allow-run",
    "--allow-ffi",
    "--allow-all",
    "-A",
    "--deny-net",
    "--deny-read",
    "--deny-write",
    "--deny-env",
    "--deny-import",
}
KEPT = {"--no-lock", "--unstable-net"}


CONFIG_MOUNTS = ("/app/engine/deno.json", "/app/deno.json")  # where Deno finds the engine's


def engine_config_mount(container: dict[str, object]) -> dict[str, str] | None:
    """The volume mount that puts a deno.json (the Tentacular format's import map) where
    the engine's Deno finds it, or None."""
    mounts = container.get("volumeMounts")
    for wanted in CONFIG_MOUNTS:
        for mount in mounts if isinstance(mounts, list) else []:
            if isinstance(mount, dict) and mount.get("mountPath") == wanted:
                return mount
    return None


def container_flags(container: dict[str, object]) -> tuple[str, ...]:
    """The flags of `deno run` as the container's command and args give them (up to the
    main module), or the image ENTRYPOINT's when the container sets no command."""
    command = container.get("command")
    args = container.get("args")
    if command != ["deno"] or not isinstance(args, list) or args[:1] != ["run"]:
        return ENTRYPOINT_FLAGS
    flags = []
    for arg in args[1:]:
        if not isinstance(arg, str) or not arg.startswith("-"):
            break
        flags.append(arg)
    return tuple(flags)


def _paths(value: str, app: Path) -> list[str]:
    out = []
    for path in value.split(","):
        trimmed = path.rstrip("/")
        if trimmed == "/app" or trimmed.startswith("/app/"):
            out.append(str(app) + trimmed[len("/app") :])
        elif trimmed == "/tmp" or trimmed.startswith("/tmp/"):
            out.append(trimmed)
    return out


def local_flags(flags: tuple[str, ...], app: Path, listen: str) -> list[str]:
    """`flags` for the process on the node: paths below /app moved to `app`, the pod's
    `0.0.0.0:<port>` to `listen` (its own address), the stand-in's environment added."""
    out = ["--no-prompt"]
    for flag in flags:
        name, eq, value = flag.partition("=")
        if name in KEPT:
            out.append(flag)
        elif name not in PERMISSIONS:
            continue  # not a permission (a --config of the pod's, say): the node's own
        elif not eq:
            out.append(flag)
        elif name in ("--allow-read", "--allow-write", "--deny-read", "--deny-write"):
            paths = _paths(value, app)
            if paths:
                out.append(f"{name}={','.join(paths)}")
        elif name == "--allow-net":
            hosts = [listen if h.startswith("0.0.0.0:") else h for h in value.split(",")]
            out.append(f"{name}={','.join(dict.fromkeys(hosts))}")
        elif name == "--allow-env":
            names = dict.fromkeys([*value.split(","), *STAND_IN_ENV])
            out.append(f"{name}={','.join(names)}")
        else:
            out.append(flag)
    return out
