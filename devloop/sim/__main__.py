"""`python -m devloop.sim --kubeconfig PATH [--port N]`: the embedded cluster on its own,
until SIGINT or SIGTERM. A restart on the same port starts empty, like a recreated kind
cluster; clients keep their kubeconfig."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from devloop.sim.cluster import CONTEXT, EmbeddedCluster, SimSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devloop.sim", description="Run pdwatch's embedded Kubernetes cluster."
    )
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write a kubeconfig for it"
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any)")
    parser.add_argument(
        "-n", "--namespace", default="default", help="the context's namespace (default: default)"
    )
    parser.add_argument(
        "--context",
        default=CONTEXT,
        help=f"the kubeconfig context's name (default: {CONTEXT}; e.g. kind-dev to stand in "
        "for a kind cluster)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply back-offs and periods by this (default: 1, the real ones)",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster = EmbeddedCluster(SimSettings(time_scale=args.time_scale), port=args.port).start()
    cluster.write_kubeconfig(args.kubeconfig, args.namespace, args.context)
    print(
        f"embedded cluster serving on {cluster.url} (context {args.context}); "
        f"kubeconfig written to {args.kubeconfig}",
        flush=True,
    )
    stop.wait()
    cluster.stop()
    print("embedded cluster stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
