"""`pdwatch DIR`: the long-running dev loop with a front end, until quit, Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from devloop import events
from devloop.kube.client import Kube
from devloop.loop import DevLoop, LoopSettings
from devloop.oneshot import EXIT_OK, EXIT_REFUSED, ClusterOptions, open_connection, teardown
from devloop.render import RenderOptions
from devloop.ui.plain import PlainOutput

CLEANUP_TIMEOUT_S = 15


async def run_daemon(
    directory: Path,
    image: str | None,
    runtime_class: str,
    opts: ClusterOptions,
    out: PlainOutput,
    debounce_ms: int,
    max_wait_ms: int,
    cleanup_on_exit: bool,
    tui: bool = False,
) -> int:
    conn = open_connection(opts, out)
    if conn is None:
        return EXIT_REFUSED
    kube = Kube(conn.api_client, conn.namespace)
    settings = LoopSettings(
        directory=directory,
        render=RenderOptions(conn.namespace, image, runtime_class),
        context=conn.context,
        debounce_ms=debounce_ms,
        max_wait_ms=max_wait_ms,
        rollout_timeout=opts.rollout_timeout,
        create_namespace=opts.create_namespace,
    )
    loop = DevLoop(settings, kube, out)
    running = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, loop.quit)
    try:
        if tui:
            from devloop.ui.tui import PdwatchApp
            from devloop.ui.widgets import Session

            session = Session(
                str(directory), conn.context, conn.embedded is not None, conn.namespace
            )
            app = PdwatchApp(loop, session)
            loop.emit = app.emit
            await app.run_async()
            loop.emit = out
        else:
            await loop.run()
        if cleanup_on_exit and loop.deployed is not None:
            name = loop.deployed.workflow.name
            with contextlib.suppress(Exception):
                deleted = await asyncio.wait_for(teardown(kube, name), CLEANUP_TIMEOUT_S)
                out(events.Warning(f"cleaned up: {', '.join(deleted) or 'nothing to delete'}"))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.remove_signal_handler(sig)
        conn.close()
    return EXIT_OK
