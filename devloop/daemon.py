"""`pdwatch DIR`: the long-running dev loop with a front end, until quit, Ctrl-C or SIGTERM.

With the terminal UI, the screen comes first: the cluster layer (the Kubernetes client is
most of pdwatch's start-up time) is imported and connected in a worker thread behind it,
so something shows within a fraction of a second even when the cluster never answers.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devloop import events
from devloop.discover import labels
from devloop.render import Bundle, RenderOptions
from devloop.settings import ClusterOptions
from devloop.waits import install_daemon_threads, within

if TYPE_CHECKING:
    from devloop.history import Revision
    from devloop.kube.connection import Connection
    from devloop.loop import DevLoop
    from devloop.sessionstate import Store
    from devloop.watch import WatchHub

EXIT_OK, EXIT_USAGE, EXIT_REFUSED = 0, 2, 3
# SIGHUP too: closing the terminal or the SSH session must end pdwatch as cleanly as
# Ctrl-C does (and run --cleanup-on-exit).
QUIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLEANUP_TIMEOUT_S = 10  # under QUIT_WATCHDOG_S: a slow API server gets a word, not a kill


# After a quit signal, at most this long to end (cleanup included) before the process
# is ended anyway.
QUIT_WATCHDOG_S = 15.0
EXIT_STUCK = 1


class QuitWatchdog:
    """Ends the process if it has not ended `seconds` after a quit signal.

    Seen: the terminal closed under the TUI (its window, tmux, an SSH session); Textual's
    output thread died on the gone terminal, and its shutdown then blocked for good on a
    write (a full queue nobody drains) with the event loop inside it. pdwatch ignored
    SIGHUP and SIGTERM from then on, at 6 % of a core each, until SIGKILL."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = False

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        threading.Thread(target=self._guard, name="pdwatch-quit-watchdog", daemon=True).start()

    def _guard(self) -> None:
        time.sleep(self.seconds)
        os._exit(EXIT_STUCK)


def follow_terminal_size() -> None:
    """Textual sizes the screen with shutil.get_terminal_size, which takes COLUMNS and
    LINES from the environment first: exported (some shells and launchers do), they froze
    the TUI at that size for good, through every resize. The terminal is asked instead."""
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def make_loop(
    directory: Path,
    wanted: RenderOptions,
    opts: ClusterOptions,
    url_port: int | None,
    conn: Connection,
    debounce_ms: int,
    max_wait_ms: int,
    emit: Callable[[events.Event], None],
    namespace: str | None = None,
    store: Store | None = None,
) -> DevLoop:
    """`namespace`: the workflow's own, when it is not the connection's (several);
    `store`: the session's state, when several workflows share it."""
    from devloop.loop import DevLoop, LoopSettings

    namespace = namespace or conn.namespace
    options, note = wanted.for_cluster(namespace, conn.context, conn.server)
    if note:
        emit(events.Warning(note))
    settings = LoopSettings(
        directory=directory,
        render=options,
        context=conn.context,
        debounce_ms=debounce_ms,
        max_wait_ms=max_wait_ms,
        rollout_timeout=opts.rollout_timeout,
        create_namespace=opts.create_namespace,
        history_limit=opts.history_limit,
        url_port=url_port,
    )
    loop = DevLoop(settings, conn.kube(namespace), emit, store)
    settle_heap()
    return loop


def workflow_namespace(directory: Path, given: str | None, conn: Connection) -> str:
    """Where one of several workflows deploys: -n, else its `deployment.namespace`, else
    the context's namespace (as for one workflow)."""
    from devloop.render import declared_namespace

    return given or declared_namespace(directory) or conn.namespace


def workflow_name(directory: Path) -> str:
    """The name it deploys under (its directory's when workflow.yaml cannot say yet)."""
    from devloop.render import read_workflow

    workflow, _ = read_workflow(directory)
    return workflow.name if workflow is not None else directory.resolve().name


def name_clash(placed: list[tuple[Path, str, str]]) -> str | None:
    """Two workflows of a session deploying the same name to the same namespace would
    replace each other's objects on every save: said before anything is deployed."""
    seen: dict[tuple[str, str], Path] = {}
    for directory, name, namespace in placed:
        other = seen.setdefault((name, namespace), directory)
        if other != directory:
            return (
                f"{other} and {directory} both deploy workflow {name!r} to namespace "
                f"{namespace}: rename one (name: in its workflow.yaml) or watch them apart"
            )
    return None


Emit = Callable[[events.Event], None]
# (workflow name, width of the longest name; "" for a session of one) → its output
Sinks = Callable[[str, int], Emit]


def sinks(json_events: bool, several: bool) -> Sinks:
    """The output each workflow's events go to: plain lines (prefixed by the name when
    there are several) on one console, or JSON lines (devloop.ui.jsonlines)."""
    if json_events:
        from devloop.ui.jsonlines import JsonLines

        return lambda name, width: JsonLines(name)
    from devloop.ui.plain import ClosableConsole, PlainOutput

    console = ClosableConsole(highlight=False, soft_wrap=True)
    return lambda name, width: PlainOutput(console, prefix=name.ljust(width) if several else "")


async def run_loops(
    directories: list[Path],
    wanted: RenderOptions,
    opts: ClusterOptions,
    namespace: str | None,
    url_port: int | None,
    conn: Connection,
    debounce_ms: int,
    max_wait_ms: int,
    quit_now: list[Callable[[], None]],
    sink: Sinks,
) -> list[DevLoop] | None:
    """The workflows of a session without the TUI: one connection, a loop each (its own
    watch, single flight, history, rollout and URL; the i-th URL on url_port + i when a
    port is given). None when two would deploy the same name to one namespace."""
    several = len(directories) > 1
    placed = [
        (d, workflow_name(d), workflow_namespace(d, namespace, conn) if several else "")
        for d in directories
    ]
    clash = name_clash(placed)
    if clash is not None:
        sink("", 0)(events.Error(clash))
        return None
    called = dict(zip(directories, labels([(d, n) for d, n, _ in placed]), strict=True))
    width = max(len(label) for label in called.values())
    loops, hub = make_loops(
        placed,
        wanted,
        opts,
        url_port,
        conn,
        debounce_ms,
        max_wait_ms,
        lambda directory: sink(called[directory], width),
    )
    quit_now.extend(loop.quit for loop in loops)
    await run_all(loops, hub)
    return loops


def make_loops(
    placed: list[tuple[Path, str, str]],
    wanted: RenderOptions,
    opts: ClusterOptions,
    url_port: int | None,
    conn: Connection,
    debounce_ms: int,
    max_wait_ms: int,
    emit_for: Callable[[Path], Emit],
) -> tuple[list[DevLoop], WatchHub | None]:
    """A loop each of (directory, name, namespace; "" for the connection's), its events
    to `emit_for(directory)`, the i-th URL on url_port + i when a port is given, and one
    file watcher for them when several."""
    from devloop.sessionstate import Store

    hub = session_watch([directory for directory, _, _ in placed], debounce_ms, max_wait_ms)
    store = Store()  # the session's one state, every workflow's in it
    loops = []
    for i, (directory, _, ns) in enumerate(placed):
        port = None if url_port is None else (url_port + i if url_port else 0)
        loop = make_loop(
            directory,
            wanted,
            opts,
            port,
            conn,
            debounce_ms,
            max_wait_ms,
            emit_for(directory),
            ns or None,
            store,
        )
        loop.watch_hub = hub
        loops.append(loop)
    return loops, hub


async def run_all(loops: list[DevLoop], hub: WatchHub | None) -> None:
    try:
        await asyncio.gather(*(loop.run() for loop in loops))
    finally:
        if hub is not None:
            await hub.close()


def session_watch(directories: list[Path], debounce_ms: int, max_wait_ms: int) -> WatchHub | None:
    """One file watcher for several workflows (devloop.watch.WatchHub); one workflow keeps
    its own."""
    from devloop.watch import WatchHub

    return WatchHub(directories, debounce_ms, max_wait_ms) if len(directories) > 1 else None


def settle_heap() -> None:
    """Start-up is over: keep the objects alive now out of the cyclic GC's full passes.

    The Kubernetes client, pydantic and Textual leave about 200,000 long-lived objects. A
    full collection walked them all in ~110 ms on a 2-core machine, and one landing in a
    log flood froze the TUI that long (found with gc.callbacks while `make bench` measured
    stalls). gc.freeze() moves them to the permanent generation: reference counting still
    frees them, only reference cycles among them would never be collected.
    """
    gc.freeze()


class Starting:
    """The TUI's controller until the loop exists; then it hands every call to the loop.
    Without `build`, the loop is set from outside (one workflow of several)."""

    def __init__(self, build: Callable[[], Awaitable[DevLoop | None]] | None = None) -> None:
        self.build = build
        self.loop: DevLoop | None = None
        self.quitting = asyncio.Event()

    @property
    def paused(self) -> bool:
        return self.loop.paused if self.loop else False

    @property
    def deployed(self) -> Bundle | None:
        return self.loop.deployed if self.loop else None

    @property
    def previous_deployed(self) -> Bundle | None:
        return self.loop.previous_deployed if self.loop else None

    async def run(self) -> None:
        self.loop = await self.build() if self.build is not None else self.loop
        if self.loop is None or self.quitting.is_set():
            await self.quitting.wait()  # refused: the reason is on screen until quit
            return
        await self.loop.run()

    def redeploy(self) -> None:
        if self.loop:
            self.loop.redeploy()

    def pause(self) -> None:
        if self.loop:
            self.loop.pause()

    def resume(self) -> None:
        if self.loop:
            self.loop.resume()

    async def trigger_run(self, body: object = None) -> events.RunResult:
        if self.loop:
            return await self.loop.trigger_run(body)
        return events.RunResult(0, "not connected yet")

    async def send_webhook(self) -> events.RunResult:
        if self.loop:
            return await self.loop.send_webhook()
        return events.RunResult(0, "not connected yet", what="webhook")

    async def history(self) -> tuple[list[Revision], str | None]:
        if self.loop:
            return await self.loop.history()
        return [], None

    def rollback(self, number: int) -> None:
        if self.loop:
            self.loop.rollback(number)

    def quit(self) -> None:
        self.quitting.set()
        if self.loop:
            self.loop.quit()


class StartingSeveral:
    """The TUI's runner of a session of several workflows: connects, makes a loop each
    (handed to its `Starting`, which the keys act on), runs them all; quit ends them all."""

    def __init__(
        self,
        build: Callable[[], Awaitable[list[DevLoop] | None]],
        each: dict[str, Starting],
    ) -> None:
        self.build = build
        self.each = each
        self.loops: list[DevLoop] = []
        self.hub: WatchHub | None = None
        self.quitting = asyncio.Event()

    async def run(self) -> None:
        self.loops = await self.build() or []
        if not self.loops or self.quitting.is_set():
            await self.quitting.wait()  # refused: the reason is on screen until quit
            return
        await run_all(self.loops, self.hub)

    def quit(self) -> None:
        self.quitting.set()
        for one in self.each.values():
            one.quit()


async def run_tui_several(
    directories: list[Path],
    wanted: RenderOptions,
    opts: ClusterOptions,
    namespace: str | None,
    url_port: int | None,
    debounce_ms: int,
    max_wait_ms: int,
    cleanup_on_exit: bool,
    quit_now: list[Callable[[], None]],
) -> int:
    """Several workflows in the terminal UI: a row each in its workflows bar, one shown."""
    from devloop.ui.tui import PdwatchApp
    from devloop.ui.workflowview import Session

    placed = [(d, workflow_name(d)) for d in directories]
    called = dict(zip(directories, labels(placed), strict=True))
    each = {called[d]: Starting() for d, _ in placed}
    outcome = EXIT_OK
    conn: Connection | None = None

    async def build() -> list[DevLoop] | None:
        nonlocal conn, outcome

        def connect() -> tuple[Connection | None, str]:
            from devloop.oneshot import connect_checked  # the heavy imports

            return connect_checked(opts)

        conn, problem = await asyncio.to_thread(connect)
        session = app.emitter(None)
        if conn is None:
            outcome = EXIT_REFUSED
            session(events.Error(problem))
            session(events.LoopState("error", "cannot deploy; q quits"))
            return None
        where = [(d, name, workflow_namespace(d, namespace, conn)) for d, name in placed]
        clash = name_clash(where)
        if clash is not None:
            outcome = EXIT_USAGE
            session(events.Error(clash))
            session(events.LoopState("error", "cannot deploy; q quits"))
            return None
        embedded = conn.embedded is not None
        for d, _, ns in where:
            app.emitter(called[d])(events.Connected(conn.context, conn.server, ns, embedded))
        loops, runner.hub = make_loops(
            where,
            wanted,
            opts,
            url_port,
            conn,
            debounce_ms,
            max_wait_ms,
            lambda directory: app.emitter(called[directory]),
        )
        for (d, _, _), loop in zip(where, loops, strict=True):
            each[called[d]].loop = loop
        return loops

    runner = StartingSeveral(build, each)
    workflows = {
        called[d]: (
            each[called[d]],
            Session(str(d), opts.context or "connecting…", opts.embedded, "…"),
        )
        for d, _ in placed
    }
    app = PdwatchApp(runner, workflows[called[directories[0]]][1], workflows=workflows)
    quit_now.append(runner.quit)
    follow_terminal_size()
    try:
        await app.run_async()
        if cleanup_on_exit:
            await cleanup_session(runner.loops)
    finally:
        if conn is not None:
            await conn.close()
    return outcome


async def run_daemon(
    directories: list[Path],
    wanted: RenderOptions,
    opts: ClusterOptions,
    namespace: str | None,
    debounce_ms: int,
    max_wait_ms: int,
    cleanup_on_exit: bool,
    tui: bool = False,
    url_port: int | None = 0,
    json_events: bool = False,
) -> int:
    """`url_port`: the local URL's port (0: a free one; None: no URL; with several
    workflows, the i-th gets url_port + i); `namespace`: -n."""
    directory = directories[0]
    running = asyncio.get_running_loop()
    install_daemon_threads(running)
    quit_now: list[Callable[[], None]] = []
    watchdog = QuitWatchdog(QUIT_WATCHDOG_S)

    def on_quit_signal(signum: int, frame: object) -> None:
        # A Python-level handler, not the loop's: it runs even while the event loop is
        # blocked, and then the watchdog ends a process that cannot end by itself.
        running.call_soon_threadsafe(lambda: [q() for q in quit_now])
        watchdog.start()

    previous = {sig: signal.signal(sig, on_quit_signal) for sig in QUIT_SIGNALS}
    conn: Connection | None = None
    loop: DevLoop | None = None
    several = len(directories) > 1
    try:
        if tui and several:
            return await run_tui_several(
                directories,
                wanted,
                opts,
                namespace,
                url_port,
                debounce_ms,
                max_wait_ms,
                cleanup_on_exit,
                quit_now,
            )
        if tui:
            from devloop.ui.tui import PdwatchApp
            from devloop.ui.workflowview import Session

            refused = False

            async def build() -> DevLoop | None:
                nonlocal conn, refused

                def connect() -> tuple[Connection | None, str]:
                    from devloop.oneshot import connect_checked  # the heavy imports

                    return connect_checked(opts)

                conn, problem = await asyncio.to_thread(connect)
                if conn is None:
                    refused = True
                    app.emit(events.Error(problem))
                    app.emit(events.LoopState("error", "cannot deploy; q quits"))
                    return None
                app.emit(
                    events.Connected(
                        conn.context, conn.server, conn.namespace, conn.embedded is not None
                    )
                )
                return make_loop(
                    directory, wanted, opts, url_port, conn, debounce_ms, max_wait_ms, app.emit
                )

            starting = Starting(build)
            session = Session(
                str(directory), opts.context or "connecting…", opts.embedded, opts.namespace or "…"
            )
            app = PdwatchApp(starting, session)
            quit_now.append(starting.quit)
            follow_terminal_size()
            await app.run_async()
            loop = starting.loop
            if refused:
                return EXIT_REFUSED
        else:
            from devloop.oneshot import connect_checked

            sink = sinks(json_events, several)
            say = sink(workflow_name(directory) if not several else "", 0)
            conn, problem = connect_checked(opts)
            if conn is None:
                say(events.Error(problem))
                return EXIT_REFUSED
            say(
                events.Connected(
                    conn.context, conn.server, conn.namespace, conn.embedded is not None
                )
            )
            loops = await run_loops(
                directories,
                wanted,
                opts,
                namespace,
                url_port,
                conn,
                debounce_ms,
                max_wait_ms,
                quit_now,
                sink,
            )
            if loops is None:
                return EXIT_USAGE
            if cleanup_on_exit:
                await cleanup_session(loops, say)
            return EXIT_OK
        if cleanup_on_exit and loop is not None:
            await cleanup_session([loop])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if conn is not None:
            await conn.close()
    return EXIT_OK


async def cleanup_session(loops: Sequence[DevLoop], out: Emit | None = None) -> None:
    """--cleanup-on-exit for the session's workflows (they share one store), side by side:
    together within the one time bound."""
    if not loops:
        return
    from devloop.sessionstate import to_clean_up

    names = to_clean_up(loops[0].store.state)
    await asyncio.gather(*(_cleanup(e.kube, names[e.key], out) for e in loops if e.key in names))


async def _cleanup(kube: Any, names: Sequence[str], out: Emit | None = None) -> None:
    """--cleanup-on-exit: what `--down` deletes, for every name the session deployed under
    (whether or not its rollout finished), within CLEANUP_TIMEOUT_S; what could not be
    deleted in time, or was refused, is said."""
    from devloop.kube.errors import KubeError
    from devloop.oneshot import remove_workflow
    from devloop.ui.plain import PlainOutput

    out = out or PlainOutput()
    deleted: list[str] = []

    async def remove_all() -> None:
        for name in names:
            await remove_workflow(kube, name, deleted)

    try:
        await within(remove_all(), CLEANUP_TIMEOUT_S)
    except (TimeoutError, KubeError, OSError) as exc:
        why = f"no answer within {CLEANUP_TIMEOUT_S} s" if isinstance(exc, TimeoutError) else exc
        done = f"deleted {', '.join(deleted)}; " if deleted else ""
        out(
            events.Warning(
                f"cleanup stopped ({why}): {done}the rest of {', '.join(names)} is left in the "
                "cluster (pdwatch DIR --down deletes it)"
            )
        )
        return
    out(events.Warning(f"cleaned up: {', '.join(deleted) or 'nothing to delete'}"))
