"""`pdwatch DIR --once` and `pdwatch DIR --down`: one deploy (or teardown), then exit.

Exit codes: 0 done; 1 the workflow does not render; 3 connection, context safety or
preflight refused; 4 the deploy or its rollout failed or timed out.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from devloop import events, history, inert
from devloop.explain import Situation, explaining
from devloop.kube import history as kube_history
from devloop.kube.client import Kube
from devloop.kube.connection import Connection, ConnectionProblem, connect
from devloop.kube.deploy import CycleResult, RestartStamps, deploy_cycle
from devloop.kube.errors import KubeError
from devloop.kube.preflight import preflight
from devloop.manifests import ENGINE_PORT, owned_by_workflow, ownership_selector
from devloop.render import Bundle, RenderOptions, read_workflow, render
from devloop.rollback import revision_bundle
from devloop.runresult import summarize
from devloop.settings import ClusterOptions
from devloop.ui.plain import PlainOutput
from devloop.waits import install_daemon_threads

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_REFUSED, EXIT_FAILED = 0, 1, 2, 3, 4
FIRST_LOG_LINES = 20


def connect_checked(opts: ClusterOptions) -> tuple[Connection | None, str]:
    """A connection to a cluster pdwatch may deploy to, or why not."""
    try:
        conn = connect(
            opts.kubeconfig,
            opts.context,
            opts.namespace,
            opts.embedded,
            allowed=opts.allow_contexts,
        )
    except ConnectionProblem as exc:
        return None, str(exc)
    return conn, ""


def open_connection(opts: ClusterOptions, out: PlainOutput) -> Connection | None:
    conn, problem = connect_checked(opts)
    if conn is None:
        out(events.Error(problem))
        return None
    out(events.Connected(conn.context, conn.server, conn.namespace, conn.embedded is not None))
    return conn


async def run_once(
    directory: Path,
    wanted: RenderOptions,
    opts: ClusterOptions,
    out: PlainOutput,
    run_input: object = None,
) -> int:
    """`wanted`: the render options from the command line (its namespace is the
    connection's); `run_input`: with --run, what to POST to /run once the pod is Ready
    (through the Service, as `t` does)."""
    conn = open_connection(opts, out)
    if conn is None:
        return EXIT_REFUSED
    options, note = wanted.for_cluster(conn.namespace, conn.context, conn.server)
    if note:
        out.console.print(inert.line(note), highlight=False, markup=False)
    runtime_class = options.runtime_class
    try:
        result = render(directory, options)
        if not isinstance(result, Bundle):
            out(events.RenderFailed(tuple(result)))
            return EXIT_INVALID
        bundle = result
        out(
            events.Rendered(
                bundle.content_hash,
                bundle.code_bytes,
                warnings=bundle.warnings,
                format=str(bundle.format),
            )
        )
        kube = conn.kube()
        checks = await preflight(
            kube,
            conn.context,
            runtime_class,
            bundle.secret is not None,
            bool(bundle.cronjobs),
            opts.create_namespace,
            with_network_policy=bundle.network_policy is not None,
        )
        for check in checks:
            for line in check.lines():
                out.console.print(line, style=None if check.ok else "red", highlight=False)
        if not all(c.ok for c in checks):
            return EXIT_REFUSED
        situation = Situation(conn.context, bundle.image.image, conn.namespace, runtime_class)
        cycle = await deploy_explained(kube, bundle, situation, opts, out)
        if cycle is None or not cycle.ok:
            return EXIT_FAILED
        await record_history(kube, bundle, opts.history_limit, out)
        await print_first_lines(kube, cycle, out)
        if run_input is None:
            return EXIT_OK
        return await run_workflow(kube, bundle.workflow.name, run_input, out)
    finally:
        await conn.close()


async def run_workflow(kube: Kube, name: str, body: object, out: PlainOutput) -> int:
    """`--once --run`: POST /run through the API server's service proxy, the answer and
    what it means printed; the exit code says whether the run succeeded."""
    try:
        status, answer = await kube.proxy_post(name, ENGINE_PORT, "run", body)
    except KubeError as exc:
        out(events.RunResult(exc.status, str(exc)))
        return EXIT_FAILED
    out(events.RunResult(status, answer, summarize(status, answer)))
    return EXIT_OK if status == 200 else EXIT_FAILED


async def print_first_lines(kube: Kube, cycle: CycleResult, out: PlainOutput) -> None:
    """The first log lines of the pod that serves now, as --once and --rollback end."""
    pod = cycle.rollout.pod if cycle.rollout else cycle.serving
    if not pod:
        return
    try:
        logs = await kube.pod_log(pod, tail_lines=None)
    except KubeError as exc:
        out(events.Warning(f"could not read the pod's logs: {exc}"))
        return
    for line in logs.splitlines()[:FIRST_LOG_LINES]:
        out(events.LogLine(pod, line))


async def run_down(directory: Path, opts: ClusterOptions, out: PlainOutput) -> int:
    """Only a workflow.yaml that validates says which workflow to delete: a second `name:`
    line, say, must not make --down delete another workflow."""
    workflow, problems = read_workflow(directory)
    if workflow is None:
        out(events.RenderFailed(tuple(p for p in problems if p.is_error)))
        out(events.Error("--down deletes nothing while workflow.yaml has errors"))
        return EXIT_INVALID
    name = workflow.name
    conn = open_connection(opts, out)
    if conn is None:
        return EXIT_REFUSED
    kube = conn.kube()
    deleted: list[str] = []
    try:
        await remove_workflow(kube, name, deleted)
    except KubeError as exc:
        situation = Situation(conn.context, namespace=conn.namespace)
        explaining(out, situation)(events.Error(str(exc)))
        return EXIT_FAILED
    finally:
        await conn.close()
    if deleted:
        for item in deleted:
            out.console.print(inert.line(f"  deleted {item}"), highlight=False, markup=False)
    else:
        out.console.print(
            f"  nothing of workflow {name} in namespace {kube.namespace}", highlight=False
        )
    return EXIT_OK


async def remove_workflow(kube: Kube, name: str, deleted: list[str]) -> None:
    """Everything pdwatch made for the workflow, its history included (`--down`,
    `--cleanup-on-exit`); each deletion is added to `deleted` as it happens, so a caller
    that gives up on a slow API server can say what is done and what is left."""
    await teardown(kube, name, deleted)
    for item in await kube_history.remove(kube, name):
        deleted.append(item)


async def teardown(kube: Kube, name: str, deleted: list[str] | None = None) -> list[str]:
    """Delete what pdwatch created for the workflow, and only what carries its labels."""
    selector = ownership_selector(name)
    deleted = [] if deleted is None else deleted
    for kind, object_name in (
        ("Deployment", name),
        ("Service", name),
        ("ConfigMap", f"{name}-code"),
        ("ConfigMap", f"{name}-import-map"),
        ("NetworkPolicy", f"{name}-netpol"),
        ("Secret", f"{name}-secrets"),
    ):
        obj = await kube.get(kind, object_name)
        if owned_by_workflow(obj, name) and await kube.delete(kind, object_name):
            deleted.append(f"{kind}/{object_name}")
    for cron in (await kube.list("CronJob", label_selector=selector)).get("items") or []:
        if await kube.delete("CronJob", cron["metadata"]["name"]):
            deleted.append(f"CronJob/{cron['metadata']['name']}")
    return deleted


def run(coro: Coroutine[Any, Any, int]) -> int:
    async def main() -> int:
        install_daemon_threads()
        return await coro

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


async def run_history(
    directory: Path, opts: ClusterOptions, out: PlainOutput, compare: tuple[int, int] | None
) -> int:
    """`--history`: the revisions, newest first, the live one marked; `--diff A B`: their
    code compared file by file."""
    name = workflow_name(directory, out)
    if name is None:
        return EXIT_INVALID
    conn = open_connection(opts, out)
    if conn is None:
        return EXIT_REFUSED
    kube = conn.kube()
    try:
        revisions = await kube_history.load(kube, name)
        live = await kube_history.live_hash(kube, name)
    except KubeError as exc:
        explaining(out, Situation(conn.context, namespace=conn.namespace))(events.Error(str(exc)))
        return EXIT_FAILED
    finally:
        await conn.close()
    if compare is None:
        for line in history.table(revisions, live):
            out.console.print(inert.line(line), highlight=False, markup=False)
        return EXIT_OK
    by_number = {r.number: r for r in revisions}
    missing = [n for n in compare if n not in by_number]
    if missing:
        out(events.Error(history.unknown_revision(missing[0], revisions)))
        return EXIT_USAGE
    text = history.diff(by_number[compare[0]], by_number[compare[1]])
    out.console.print(
        inert.text(text) or "the two revisions have the same code",
        highlight=False,
        markup=False,
        end="" if text else "\n",
    )
    return EXIT_OK


def workflow_name(directory: Path, out: PlainOutput) -> str | None:
    workflow, problems = read_workflow(directory)
    if workflow is None:
        out(events.RenderFailed(tuple(p for p in problems if p.is_error)))
        return None
    return workflow.name


async def run_rollback(
    directory: Path,
    number: int,
    wanted: RenderOptions,
    opts: ClusterOptions,
    out: PlainOutput,
) -> int:
    """`--rollback REV`: the revision's code back into `<wf>-code`, one rollout followed as
    --once does; what is local then differs from what is live, and is said."""
    name = workflow_name(directory, out)
    if name is None:
        return EXIT_INVALID
    conn = open_connection(opts, out)
    if conn is None:
        return EXIT_REFUSED
    try:
        kube = conn.kube()
        situation = Situation(conn.context, namespace=conn.namespace)
        try:
            revisions = await kube_history.load(kube, name)
        except KubeError as exc:
            explaining(out, situation)(events.Error(str(exc)))
            return EXIT_FAILED
        revision = next((r for r in revisions if r.number == number), None)
        if revision is None:
            out(events.Error(history.unknown_revision(number, revisions)))
            return EXIT_USAGE
        if revision.content_hash == await kube_history.live_hash(kube, name):
            out.console.print(
                f"revision {number} ({revision.short_hash}) is live already: nothing to roll back",
                highlight=False,
            )
            return EXIT_OK
        options, _ = wanted.for_cluster(conn.namespace, conn.context, conn.server)
        runtime_class = options.runtime_class
        bundle = revision_bundle(directory, revision, options)
        if not isinstance(bundle, Bundle):
            out(events.RenderFailed(tuple(bundle)))
            return EXIT_INVALID
        out.console.print(
            f"rolling back to revision {number} ({revision.short_hash})", highlight=False
        )
        situation = Situation(conn.context, bundle.image.image, conn.namespace, runtime_class)
        cycle = await deploy_explained(kube, bundle, situation, opts, out, force_restart=True)
        if cycle is None or not cycle.ok:
            return EXIT_FAILED
        await print_first_lines(kube, cycle, out)
        local = render(directory, options)
        if not isinstance(local, Bundle) or local.content_hash != bundle.content_hash:
            out(
                events.Warning(
                    f"revision {number} is live; the local files differ from it (the next "
                    "save, or pdwatch DIR, deploys them)"
                )
            )
        return EXIT_OK
    finally:
        await conn.close()


async def record_history(kube: Kube, bundle: Bundle, limit: int, out: PlainOutput) -> None:
    """A deploy that reached Ready goes into the history; not being able to record it
    is said, and does not fail the deploy."""
    try:
        await kube_history.record(kube, bundle, limit)
    except KubeError as exc:
        out(events.Warning(f"the deploy history was not updated: {exc}"))


async def deploy_explained(
    kube: Kube,
    bundle: Bundle,
    situation: Situation,
    opts: ClusterOptions,
    out: PlainOutput,
    force_restart: bool = False,
) -> CycleResult | None:
    """One deploy cycle followed to its end, each failure with its explanation; None when
    the API server refused a request (said, explained)."""
    try:
        return await deploy_cycle(
            kube,
            bundle,
            explaining(out, situation),
            RestartStamps(),
            force_restart=force_restart,
            rollout_timeout=opts.rollout_timeout,
        )
    except KubeError as exc:
        explaining(out, situation)(events.Error(str(exc), tuple(exc.details())))
        return None
