"""`python -m devloop.controlplane --kubeconfig FILE`: Kubernetes' control plane and
pdwatch's node on loopback, in the foreground until SIGINT or SIGTERM (dev.py controlplane)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from devloop.controlplane import build
from devloop.controlplane.cluster import CONTEXT, NODE_NAME, ControlPlane, run_node
from devloop.sim.settings import SimSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devloop.controlplane", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write it")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="the node's back-offs (crash loops, image pulls, mounts), scaled; tests use 0.05",
    )
    args = parser.parse_args(argv)
    plane = ControlPlane()
    try:
        path = plane.start(args.kubeconfig)
    except build.BuildError as exc:
        print(f"controlplane: {exc}", file=sys.stderr)
        return 3

    def up() -> None:  # said once its node is Ready too: `kubectl get nodes` shows it
        print(
            f"control plane up in {plane.started_in:.1f} s at {plane.server}, node "
            f"{NODE_NAME} Ready; kubeconfig {path} (context {CONTEXT}); logs in "
            f"{plane.directory}",
            flush=True,
        )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_node(plane, stop, SimSettings(time_scale=args.time_scale), up)

    written = path.read_bytes()
    try:
        asyncio.run(serve())
    finally:
        plane.stop()
        # the kubeconfig points at nothing now; leave it if another run has replaced it
        if args.kubeconfig.exists() and args.kubeconfig.read_bytes() == written:
            args.kubeconfig.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
