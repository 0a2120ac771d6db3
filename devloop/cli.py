"""Command line → what to do. Heavy modules are imported only by the command that needs them,
so `pdwatch --help` stays fast."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from devloop import __version__, discover, inert
from devloop.wfformat import FORMATS

if TYPE_CHECKING:
    from devloop.render import RenderOptions
    from devloop.settings import ClusterOptions

EXIT_OK = 0
EXIT_INVALID = 1  # the workflow does not render
EXIT_USAGE = 2

REMOVED_FLAGS = {"--cluster-registry": "flag --cluster-registry is removed; use --image instead"}


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdwatch",
        description="Keep a Pipedreamer workflow live on Kubernetes while you edit it.",
    )
    parser.add_argument(
        "directories",
        metavar="DIR",
        type=Path,
        nargs="+",
        help="a workflow directory; several, or a directory holding workflows (every one "
        "below it), watch them all in one session",
    )
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
        help="delete everything pdwatch created for this workflow (history too), and exit",
    )
    mode.add_argument(
        "--history",
        action="store_true",
        help="list the deploys recorded in the cluster, newest first, the live one marked",
    )
    mode.add_argument(
        "--rollback",
        type=positive_int,
        metavar="REV",
        help="put revision REV's code back live, follow its rollout as --once does, exit",
    )
    parser.add_argument(
        "--run",
        nargs="?",
        const="{}",
        metavar="JSON",
        help="with --once: then POST /run through the Service (JSON input, default {}) and "
        "print the engine's answer; exit 4 when the run fails",
    )
    parser.add_argument(
        "--diff",
        type=positive_int,
        nargs=2,
        metavar=("A", "B"),
        help="with --history: revision A's code against revision B's, file by file",
    )
    parser.add_argument(
        "--history-limit",
        type=positive_int,
        default=10,
        metavar="N",
        help="deploy revisions kept in the cluster (default: 10)",
    )
    parser.add_argument(
        "-n", "--namespace", help="namespace (default: the context's namespace, else default)"
    )
    parser.add_argument(
        "--image",
        help="engine image (default: .pipedreamer/ or .tentacular/base-image.txt, else the "
        "format's pipedreamer-engine:latest or tentacular-engine:latest)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="the workflow's format (default: read from the workflow: a contract, $shared "
        'secrets, .tentacular/ or an import from "tentacular" mean tentacular)',
    )
    parser.add_argument(
        "--runtime-class",
        metavar="NAME",
        help='pod RuntimeClass (default: gvisor, none on a local kind cluster; "" for none)',
    )
    cluster = parser.add_argument_group("cluster")
    cluster.add_argument(
        "--embedded",
        action="store_true",
        help="use pdwatch's embedded cluster (no kubeconfig, nothing to install)",
    )
    cluster.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
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
        "--create-namespace", action="store_true", help="create the namespace if missing"
    )
    cluster.add_argument(
        "--rollout-timeout",
        type=positive_float,
        default=120,
        metavar="SECONDS",
        help="how long the new pod may take to become Ready (default: 120)",
    )
    watching = parser.add_argument_group("watching")
    watching.add_argument(
        "--no-tui",
        action="store_true",
        help="plain output, one line per event (the default without a terminal)",
    )
    watching.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per event on stdout, for a program to follow (README: "
        '"Events as JSON"); no terminal UI',
    )
    parser.add_argument(
        "--log-file",
        metavar="FILE",
        help="append pdwatch's debug log to FILE (the tracebacks of unexpected failures)",
    )
    watching.add_argument(
        "--debounce-ms",
        type=positive_int,
        default=150,
        metavar="MS",
        help="deploy this long after the last save (default: 150)",
    )
    watching.add_argument(
        "--max-wait-ms",
        type=positive_int,
        default=2000,
        metavar="MS",
        help="deploy at the latest this long after a burst's first change (default: 2000)",
    )
    watching.add_argument(
        "--cleanup-on-exit", action="store_true", help="run --down when pdwatch exits"
    )
    url = watching.add_mutually_exclusive_group()
    url.add_argument(
        "--port",
        type=positive_int,
        metavar="N",
        help="serve the workflow at http://127.0.0.1:N, the pod being served through every "
        "rollout (default: a free port)",
    )
    url.add_argument("--no-url", action="store_true", help="no local URL")
    return parser


def entry() -> None:
    """The `pdwatch` command: main's exit code, at once.

    A normal interpreter exit force-stops daemon threads that are still blocked on the
    network (pdwatch never waits for them: see waits.DaemonThreads); one stopped inside
    the Kubernetes client's pydantic validation (Rust) aborted the process with SIGABRT.
    Output is flushed first; nothing else of pdwatch's runs at interpreter exit.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    for arg in args_list:
        flag = arg.split("=", 1)[0]
        if flag in REMOVED_FLAGS:
            print(f"pdwatch: {REMOVED_FLAGS[flag]}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.diff and not args.history:
        parser.error("--diff compares two revisions of --history: pdwatch DIR --history --diff A B")
    if args.run is not None:
        if not args.once:
            parser.error("--run runs the workflow once deployed: pdwatch DIR --once --run")
        try:
            args.run = json.loads(args.run)
        except ValueError as exc:
            parser.error(f"--run {args.run!r} is not JSON: {exc}")
    if args.json and (args.render or args.once or args.down or args.history or args.rollback):
        parser.error("--json is for watching: pdwatch DIR --json")
    if args.log_file:
        from devloop.supervise import configure_log_file

        try:
            configure_log_file(args.log_file)
        except OSError as exc:
            print(f"pdwatch: --log-file {args.log_file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
    found = discover.workflow_dirs(args.directories)
    if isinstance(found, discover.NoWorkflows):
        print(f"pdwatch: {found.message}", file=sys.stderr)
        return EXIT_USAGE
    args.workflows, args.directory = found, found[0]
    several = len(found) > 1
    if several and (args.history or args.rollback is not None):
        shown = ", ".join(str(d) for d in found)
        parser.error(f"--history and --rollback take one workflow; these are several: {shown}")
    if args.render:
        return first_failure(render_command(args, d, several) for d in found)
    if args.once or args.down:
        return first_failure(oneshot_command(args, d, several) for d in found)
    if args.history or args.rollback is not None:
        return oneshot_command(args, args.directory, False)
    return daemon_command(args)


def first_failure(codes: Iterable[int]) -> int:
    """Every workflow's command runs; the exit code is the first one that is not 0."""
    failed = [code for code in codes if code != EXIT_OK]
    return failed[0] if failed else EXIT_OK


def heading(directory: Path, several: bool, stream: TextIO) -> None:
    """With several workflows, each one's output starts with its directory."""
    if several:
        stream.write(inert.line(f"== {directory}") + "\n")
        stream.flush()


def render_command(args: argparse.Namespace, directory: Path, several: bool) -> int:
    from devloop.render import Bundle, declared_namespace, render
    from devloop.yamlout import dump_all

    heading(directory, several, sys.stderr)
    namespace = args.namespace or declared_namespace(directory) or "default"
    options = replace(render_options(args), namespace=namespace)
    result = render(directory, options)
    problems = result.warnings if isinstance(result, Bundle) else result
    for problem in problems:
        print(inert.line(f"{problem.severity}: {problem}"), file=sys.stderr)
    if not isinstance(result, Bundle):
        count = sum(p.is_error for p in result)
        print(f"pdwatch: {count} problem(s); nothing rendered", file=sys.stderr)
        return EXIT_INVALID
    # A YAML comment: the stream stays one that kubectl apply -f - takes as it is.
    sys.stdout.write(inert.line(f"# format: {result.format}") + "\n")
    sys.stdout.write(dump_all(result.printable_manifests()))
    return EXIT_OK


def render_options(args: argparse.Namespace) -> RenderOptions:
    """What the command line says about rendering (the namespace comes from the
    connection)."""
    from devloop.render import DEFAULT_RUNTIME_CLASS, RenderOptions

    given = args.runtime_class is not None
    return RenderOptions(
        image=args.image,
        runtime_class=args.runtime_class if given else DEFAULT_RUNTIME_CLASS,
        format=args.format,
        runtime_class_given=given,
    )


def cluster_options(args: argparse.Namespace, directory: Path | None) -> ClusterOptions:
    """`directory`: the workflow whose `deployment.namespace` is the connection's; None:
    only -n (several workflows, each in its own)."""
    from devloop.render import declared_namespace
    from devloop.settings import ClusterOptions

    declared = declared_namespace(directory) if directory is not None else None
    return ClusterOptions(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace or declared,
        embedded=args.embedded,
        allow_contexts=set(args.allow_context),
        # the embedded cluster is pdwatch's own, made for this run: the workflow's
        # namespace (deployment.namespace, -n) is simply made there
        create_namespace=args.create_namespace or args.embedded,
        rollout_timeout=args.rollout_timeout,
        history_limit=args.history_limit,
    )


def oneshot_command(args: argparse.Namespace, directory: Path, several: bool) -> int:
    from devloop import oneshot
    from devloop.ui.plain import PlainOutput

    heading(directory, several, sys.stdout)
    opts, out = cluster_options(args, directory), PlainOutput()
    if args.down:
        return oneshot.run(oneshot.run_down(directory, opts, out))
    if args.history:
        compare = (args.diff[0], args.diff[1]) if args.diff else None
        return oneshot.run(oneshot.run_history(directory, opts, out, compare))
    if args.rollback is not None:
        return oneshot.run(
            oneshot.run_rollback(directory, args.rollback, render_options(args), opts, out)
        )
    return oneshot.run(oneshot.run_once(directory, render_options(args), opts, out, args.run))


def daemon_command(args: argparse.Namespace) -> int:
    import asyncio

    from devloop import daemon

    several = len(args.workflows) > 1
    coroutine = daemon.run_daemon(
        args.workflows,
        render_options(args),
        cluster_options(args, None if several else args.directory),
        args.namespace,
        args.debounce_ms,
        args.max_wait_ms,
        args.cleanup_on_exit,
        tui=sys.stdout.isatty() and not args.no_tui and not args.json,
        url_port=None if args.no_url else (args.port or 0),
        json_events=args.json,
    )
    try:
        return asyncio.run(coroutine)
    except KeyboardInterrupt:
        return 130
