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
    parser.add_argument(
        "-n", "--namespace", default="default", help="namespace to deploy to (default: default)"
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
    print(
        "pdwatch: only --render is available in this version; the watch loop is not built yet",
        file=sys.stderr,
    )
    return EXIT_USAGE


def render_command(args: argparse.Namespace) -> int:
    from devloop.render import Bundle, RenderOptions, render
    from devloop.yamlout import dump_all

    options = RenderOptions(
        namespace=args.namespace, image=args.image, runtime_class=args.runtime_class
    )
    result = render(args.directory, options)
    if not isinstance(result, Bundle):
        for problem in result:
            print(f"error: {problem}", file=sys.stderr)
        print(f"pdwatch: {len(result)} problem(s); nothing rendered", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(dump_all(result.printable_manifests()))
    return EXIT_OK
