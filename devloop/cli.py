"""Command line → what to do. Heavy modules are imported only by the command that needs them,
so `pdwatch --help` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devloop import __version__

EXIT_OK = 0
EXIT_INVALID = 1  # the workflow does not render
EXIT_USAGE = 2

REMOVED_FLAGS = {"--cluster-registry": "flag --cluster-registry is removed; use --image instead"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdwatch",
        description="Keep a Pipedreamer workflow live on Kubernetes while you edit it.",
    )
    parser.add_argument("directory", metavar="DIR", type=Path, help="the workflow directory")
    parser.add_argument("--version", action="version", version=f"pdwatch {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--render",
        action="store_true",
        help="print every manifest as one YAML stream (Secret values redacted) and exit",
    )
    mode.add_argument(
        "--once",
        action="store_true",
        help="deploy once, wait until the new pod is Ready, print its first log lines, exit",
    )
    mode.add_argument(
        "--down",
        action="store_true",
        help="delete everything pdwatch created for this workflow, and exit",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        help="namespace (default: the context's namespace, else default)",
    )
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--embedded",
        action="store_true",
        help="run against pdwatch's embedded cluster (no kubeconfig, nothing to install)",
    )
    cluster.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)",
    )
    cluster.add_argument("--context", help="kubeconfig context (default: the current one)")
    cluster.add_argument(
        "--allow-context",
        action="append",
        default=[],
        metavar="NAME",
        help="deploy to this context although it does not look local (repeatable)",
    )
    cluster.add_argument(
        "--create-namespace",
        action="store_true",
        help="create the namespace when it does not exist",
    )
    cluster.add_argument(
        "--rollout-timeout",
        type=float,
        default=120,
        metavar="SECONDS",
        help="how long the new pod may take to become Ready (default: 120)",
    )
    parser.add_argument(
        "--image",
        help="engine image (default: .pipedreamer/base-image.txt, else pipedreamer-engine:latest)",
    )
    parser.add_argument(
        "--runtime-class",
        default="gvisor",
        metavar="NAME",
        help='pod RuntimeClass (default: gvisor; "" for none)',
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    for arg in args_list:
        flag = arg.split("=", 1)[0]
        if flag in REMOVED_FLAGS:
            print(f"pdwatch: {REMOVED_FLAGS[flag]}", file=sys.stderr)
            return EXIT_USAGE
    args = build_parser().parse_args(args_list)
    if args.render:
        return render_command(args)
    if args.once or args.down:
        return oneshot_command(args)
    print(
        "pdwatch: the watch loop is not built yet; use --once (deploy once) or --render",
        file=sys.stderr,
    )
    return EXIT_USAGE


def oneshot_command(args: argparse.Namespace) -> int:
    from devloop import oneshot
    from devloop.ui.plain import PlainOutput

    opts = oneshot.ClusterOptions(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace,
        embedded=args.embedded,
        allow_contexts=set(args.allow_context),
        create_namespace=args.create_namespace,
        rollout_timeout=args.rollout_timeout,
    )
    out = PlainOutput()
    if args.down:
        return oneshot.run(oneshot.run_down(args.directory, opts, out))
    return oneshot.run(oneshot.run_once(args.directory, args.image, args.runtime_class, opts, out))


def render_command(args: argparse.Namespace) -> int:
    from devloop.render import Bundle, RenderOptions, render
    from devloop.yamlout import dump_all

    options = RenderOptions(
        namespace=args.namespace or "default", image=args.image, runtime_class=args.runtime_class
    )
    result = render(args.directory, options)
    if not isinstance(result, Bundle):
        for problem in result:
            print(f"error: {problem}", file=sys.stderr)
        print(f"pdwatch: {len(result)} problem(s); nothing rendered", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(dump_all(result.printable_manifests()))
    return EXIT_OK
