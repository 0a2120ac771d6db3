"""pdwatch's benchmarks (`python3 dev.py bench`): figures, never pass/fail.

pdwatch runs as a separate process, as a user runs it, against the embedded cluster hosted
by this process with its simulated delays set to zero, so what is measured is pdwatch's
own cost. Times are CLOCK_MONOTONIC, shared by both processes on Linux: a file write's
end (here), a request's arrival at the API server (the cluster's request log), a line's
arrival on pdwatch's stdout (here).

Writes bench/results.json and BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from devloop.render import Bundle, render  # noqa: E402
from devloop.sim import EmbeddedCluster, SimSettings, resources  # noqa: E402

EXAMPLES = ROOT / "examples"
PY = sys.executable
BIN = Path(PY).parent
READY_SUMMARY = re.compile(r" Ready in .* → .* from save to Ready")


# A node module as the engine wants one: it must have a function default export
EXPORT = "export default async () => ({});\n"


def node_code(line: str) -> str:
    """A node file that prints `line` when the engine loads it."""
    return f"console.log({json.dumps(line)});\n{EXPORT}"


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(p95, 1),
        "max": round(ordered[-1], 1),
    }


class Process:
    """A pdwatch process whose stdout lines are kept with their arrival times."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [PY, "-m", "devloop", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "250", **(env or {})},
        )
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.changed.notify_all()

    def wait(
        self, match: Callable[[str], bool], since: int = 0, timeout: float = 30
    ) -> tuple[float, str, int]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for i in range(since, len(self.lines)):
                    if match(self.lines[i][1]):
                        return self.lines[i][0], self.lines[i][1], i
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(line for _, line in self.lines[-15:])
                    raise TimeoutError(f"no matching line within {timeout}s; last lines:\n{tail}")
                self.changed.wait(left)

    def stop(self) -> float:
        """SIGTERM; returns the seconds until it exited."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - t0


def copy_example(tmp: Path, name: str = "hello", as_name: str | None = None) -> Path:
    target = tmp / (as_name or name)
    shutil.copytree(EXAMPLES / name, target)
    return target


def start_headless(
    tmp: Path, kubeconfig: Path, name: str, namespace: str, *extra: str
) -> tuple[Path, Process]:
    """A copy of examples/hello watched by a headless pdwatch in its own namespace, once its
    first deploy is Ready."""
    directory = copy_example(tmp, "hello", name)
    proc = Process(
        [
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
            "--no-tui",
            "-n",
            namespace,
            "--create-namespace",
            *extra,
        ]
    )
    proc.wait(lambda line: "start → " in line)
    return directory, proc


def requests_since(cluster: EmbeddedCluster, index: int) -> list[tuple[float, str, str, str]]:
    assert cluster.request_log is not None
    return list(cluster.request_log[index:])


def first(
    requests: list[tuple[float, str, str, str]],
    method: str,
    path_end: str,
    apply: bool | None = None,
) -> float | None:
    for t, m, path, query in requests:
        if m == method and path.endswith(path_end):
            is_apply = "force=true" in query
            if apply is None or apply == is_apply:
                return t
    return None


# --- 1. edit-to-live latency ---------------------------------------------------------------


def bench_latency(
    cluster: EmbeddedCluster,
    kubeconfig: Path,
    tmp: Path,
    debounce_ms: int,
    edits: int,
    namespace: str = "",
) -> dict[str, Any]:
    namespace = namespace or f"lat{debounce_ms}"
    directory, proc = start_headless(
        tmp, kubeconfig, f"latency-{namespace}", namespace, "--debounce-ms", str(debounce_ms)
    )
    try:
        cluster.request_log = []
        figures: dict[str, list[float]] = {
            "a_configmap_applied_ms": [],
            "b_restart_reached_ms": [],
            "c_ready_seen_ms": [],
            "d_first_log_line_ms": [],
        }
        pods_seen = set()
        for i in range(edits):
            mark, log_mark = len(proc.lines), len(cluster.request_log)
            (directory / "nodes" / "greet.ts").write_text(node_code(f"edit {i}"))
            t0 = time.monotonic()
            t_ready, _, _ = proc.wait(lambda line: " Ready in " in line and "→" not in line, mark)
            # the first line the saved code prints, really run by the engine in the new pod
            t_log, line, _ = proc.wait(
                lambda line, i=i: (
                    line.endswith(f"] edit {i}")
                    and line.split("[")[1].split("]")[0] not in pods_seen
                ),
                mark,
            )
            pods_seen.add(line.split("[")[1].split("]")[0])
            proc.wait(lambda line: "from save to Ready" in line, mark)
            requests = requests_since(cluster, log_mark)
            t_cm = first(requests, "PATCH", f"/namespaces/{namespace}/configmaps/hello-code")
            # the request that starts the rollout: the Deployment apply whose pod template
            # records the new code (a restartedAt patch in pdwatch before 2026-11-25)
            t_restart = first(requests, "PATCH", f"/namespaces/{namespace}/deployments/hello")
            if t_cm is not None:
                figures["a_configmap_applied_ms"].append((t_cm - t0) * 1000)
            if t_restart is not None:
                figures["b_restart_reached_ms"].append((t_restart - t0) * 1000)
            figures["c_ready_seen_ms"].append((t_ready - t0) * 1000)
            figures["d_first_log_line_ms"].append((t_log - t0) * 1000)
            time.sleep(0.3)
        return {k: stats(v) for k, v in figures.items()}
    finally:
        proc.stop()
        cluster.request_log = None


# --- long sessions, crowded namespaces, quitting (issues 16, 17) ------------------------------


def add_unrelated_events(cluster: EmbeddedCluster, namespace: str, count: int) -> None:
    """`count` Events about objects pdwatch does not follow, written straight into the
    cluster's store (as a busy namespace's history would be)."""
    namespaces = resources.of_kind("v1", "Namespace")
    events_resource = resources.of_kind("v1", "Event")

    def create(start: int, stop: int) -> None:
        if start == 0:
            cluster.api.create(namespaces, "", {"metadata": {"name": namespace}}, "bench")
        for i in range(start, stop):
            cluster.api.create(
                events_resource,
                namespace,
                {
                    "metadata": {"name": f"noise.{i:06d}"},
                    "involvedObject": {"kind": "Pod", "name": f"other-{i}", "namespace": namespace},
                    "reason": "Noise",
                    "message": f"unrelated event {i}",
                    "type": "Normal",
                },
                "bench",
            )

    for start in range(0, count, 1000):
        cluster.call(lambda start=start: create(start, min(count, start + 1000)), timeout=60)


def bench_events(
    cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path, edits: int
) -> dict[str, Any]:
    """Save-to-Ready in an empty namespace and in one holding 20,000 unrelated Events."""
    empty = bench_latency(cluster, kubeconfig, tmp, 20, edits, "events-none")
    add_unrelated_events(cluster, "events-many", 20_000)
    crowded = bench_latency(cluster, kubeconfig, tmp, 20, edits, "events-many")
    ratio = crowded["c_ready_seen_ms"]["p50"] / empty["c_ready_seen_ms"]["p50"]
    return {
        "empty_namespace_ready_ms": empty["c_ready_seen_ms"],
        "with_20000_events_ready_ms": crowded["c_ready_seen_ms"],
        "ratio_p50": round(ratio, 2),
    }


def bench_long_session(
    cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path, cycles: int
) -> dict[str, Any]:
    """One pdwatch through `cycles` deploy cycles: its RSS after 100 and after all of
    them, and edit-to-Ready at the start and the end of the session."""
    directory, proc = start_headless(tmp, kubeconfig, "long", "long", "--debounce-ms", "20")
    process = psutil.Process(proc.proc.pid)
    took: list[float] = []
    rss: dict[int, float] = {}
    try:
        for i in range(1, cycles + 1):
            mark = len(proc.lines)
            (directory / "nodes" / "greet.ts").write_text(node_code(f"cycle {i}"))
            t0 = time.monotonic()
            t_ready, _, _ = proc.wait(lambda line: "from save to Ready" in line, mark, timeout=60)
            took.append((t_ready - t0) * 1000)
            if i in (100, cycles):
                rss[i] = round(process.memory_info().rss / 2**20, 1)
        return {
            "cycles": cycles,
            "rss_mb_after_100": rss.get(100),
            f"rss_mb_after_{cycles}": rss.get(cycles),
            "rss_growth_mb": round(rss[cycles] - rss[100], 1) if 100 in rss else None,
            "first_100_save_to_ready_ms": stats(took[:100]),
            "last_100_save_to_ready_ms": stats(took[-100:]),
        }
    finally:
        proc.stop()


def bench_quit(cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path) -> dict[str, Any]:
    """SIGINT to exit, in three states: tailing logs, following a rollout that never gets
    Ready, retrying against a cluster that went away (its own cluster)."""
    out: dict[str, Any] = {}
    _, proc = start_headless(tmp, kubeconfig, "quit-idle", "quit-idle")
    proc.wait(lambda line: "health check" in line)
    out["tailing_logs_ms"] = round(interrupt(proc) * 1000, 1)
    cluster.set_image("engine:never", ready=False)
    directory = copy_example(tmp, "hello", "quit-follow")
    proc = Process(
        [
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
            "--no-tui",
            "-n",
            "quit-follow",
            "--create-namespace",
            "--image",
            "engine:never",
        ]
    )
    proc.wait(lambda line: " started (" in line)
    out["following_a_rollout_ms"] = round(interrupt(proc) * 1000, 1)
    with EmbeddedCluster(SimSettings.instant()) as other:
        config = other.write_kubeconfig(tmp / "kubeconfig-quit")
        directory, proc = start_headless(tmp, config, "quit-retry", "quit-retry")
        other.stop_server()
        mark = len(proc.lines)
        (directory / "nodes" / "greet.ts").write_text(node_code("while down"))
        proc.wait(lambda line: "retry 2 in" in line, mark)
        out["retrying_with_the_cluster_gone_ms"] = round(interrupt(proc) * 1000, 1)
    out["requests_in_flight_ms"] = round(bench_quit_in_flight(kubeconfig, tmp) * 1000, 1)
    return out


IN_FLIGHT = (
    "let runs = 0;\n"
    "export default async function run() {\n"
    "  console.log(`run ${++runs} started`);\n"
    "  await new Promise((resolve) => setTimeout(resolve, 600_000));\n"
    "  return {};\n}\n"
)


def served_url(proc: Process) -> str:
    """The local URL pdwatch said it serves (devloop.localurl)."""
    _, line, _ = proc.wait(lambda line: "the workflow answers at " in line)
    found = re.search(r"http://127\.0\.0\.1:\d+", line)
    assert found is not None, line
    return found[0]


def bench_quit_in_flight(kubeconfig: Path, tmp: Path, requests: int = 3) -> float:
    """SIGINT while requests to the local URL wait on the engine (issue 28)."""
    directory = copy_example(tmp, "hello", "quit-inflight")
    (directory / "nodes" / "greet.ts").write_text(IN_FLIGHT)
    proc = Process(
        [
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
            "--no-tui",
            "-n",
            "quit-inflight",
            "--create-namespace",
        ]
    )
    url = served_url(proc)
    proc.wait(lambda line: "start → " in line)

    def post() -> None:
        request = urllib.request.Request(f"{url}/run", data=b"{}", method="POST")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=30).read()

    for _ in range(requests):
        threading.Thread(target=post, daemon=True).start()
    proc.wait(lambda line: f"run {requests} started" in line)
    return interrupt(proc)


# --- what one save costs (issue 27) -------------------------------------------------------


def bench_per_save(tmp: Path, saves: int = 20) -> dict[str, Any]:
    """One save of examples/hello, in process against an embedded cluster of its own: the
    API requests pdwatch makes (the cluster's request log, watches included), the threads
    it starts (Thread.start called on pdwatch's own thread), the events it emits, from the
    save until its cycle finished and its deploy is recorded in the history."""
    from kubernetes import client

    from devloop import events
    from devloop.kube.client import Kube
    from devloop.loop import DevLoop, LoopSettings
    from devloop.render import RenderOptions
    from devloop.waits import install_daemon_threads

    started = [0]
    real_start = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        if threading.current_thread() is threading.main_thread():
            started[0] += 1
        real_start(self)

    async def main(cluster: EmbeddedCluster) -> dict[str, list[float]]:
        seen: list[events.Event] = []
        arrived = asyncio.Event()

        def emit(event: events.Event) -> None:
            seen.append(event)
            arrived.set()

        async def until(wanted: Callable[[events.Event], bool], since: int) -> None:
            while not any(wanted(e) for e in seen[since:]):
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 30)

        install_daemon_threads(asyncio.get_running_loop())  # as the daemon runs
        directory = copy_example(tmp, "hello", "per-save")
        api = client.ApiClient(client.Configuration(host=cluster.url))
        settings = LoopSettings(directory, RenderOptions("default"), "pdwatch-embedded", 20)
        kube = Kube(api, "default")
        loop = DevLoop(settings, kube, emit)
        task = asyncio.create_task(loop.run())
        await until(lambda e: isinstance(e, events.Recorded), 0)
        figures: dict[str, list[float]] = {"requests": [], "threads": [], "events": []}
        for i in range(saves):
            mark, threads = len(seen), started[0]
            cluster.request_log = []
            (directory / "nodes" / "greet.ts").write_text(node_code(f"save {i}"))
            await until(lambda e: isinstance(e, events.Recorded), mark)
            log = list(cluster.request_log)
            figures["requests"].append(len(log))
            figures["threads"].append(started[0] - threads)
            figures["events"].append(len(seen) - mark)
            requests = [f"{m} {p.split('/namespaces/default/')[-1]}" for _, m, p, _ in log]
        print("one save's requests:", *sorted(requests), sep="\n  ")
        cluster.request_log = None
        loop.quit()
        await task
        await kube.close()
        api.close()
        return figures

    threading.Thread.start = counting_start  # type: ignore[method-assign]
    try:
        with EmbeddedCluster(SimSettings.instant()) as cluster:
            figures = asyncio.run(main(cluster))
    finally:
        threading.Thread.start = real_start  # type: ignore[method-assign]
    return {name: stats(values) for name, values in figures.items()}


def bench_five_workflows(
    kubeconfig: Path, tmp: Path, saves: int = 15, idle_seconds: float = 30
) -> dict[str, Any]:
    """Save → Ready of one workflow watched alone, then of the first of five watched in one
    session (pdwatch PARENT, headless, --debounce-ms 20, in a namespace each run); then
    that session's idle CPU and peak RSS."""

    def session(parent: Path, names: list[str], namespace: str) -> Process:
        for name in names:
            directory = copy_example(parent, "hello", name)
            yaml = directory / "workflow.yaml"
            yaml.write_text(yaml.read_text().replace("name: hello", f"name: {name}"))
        proc = Process(
            [
                str(parent),
                "--kubeconfig",
                str(kubeconfig),
                "--no-tui",
                "-n",
                namespace,
                "--create-namespace",
                "--debounce-ms",
                "20",
            ]
        )
        try:
            for name in names:
                proc.wait(lambda line, name=name: "start → " in line and name in line, timeout=60)
        except TimeoutError:
            proc.stop()  # not left running when its session never came up
            raise
        return proc

    def save_to_ready(proc: Process, directory: Path, name: str) -> list[float]:
        took = []
        for i in range(saves):
            mark = len(proc.lines)
            (directory / "nodes" / "greet.ts").write_text(node_code(f"save {i}"))
            t0 = time.monotonic()
            t_ready, _, _ = proc.wait(
                lambda line: "from save to Ready" in line and (not name or f"{name} " in line),
                mark,
                timeout=60,
            )
            took.append((t_ready - t0) * 1000)
            time.sleep(0.3)
        return took

    out: dict[str, Any] = {}
    alone = session(tmp / "alone", ["w0"], "five-alone")
    try:
        out["one_save_to_ready_ms"] = stats(save_to_ready(alone, tmp / "alone" / "w0", ""))
    finally:
        alone.stop()
    names = [f"w{i}" for i in range(5)]
    five = session(tmp / "five", names, "five")
    try:
        out["five_save_to_ready_ms"] = stats(save_to_ready(five, tmp / "five" / "w0", "w0"))
        time.sleep(1)
        out["five_idle"] = measure_idle(five.proc.pid, idle_seconds)
    finally:
        five.stop()
    one, many = out["one_save_to_ready_ms"]["p50"], out["five_save_to_ready_ms"]["p50"]
    out["five_over_one_p50"] = round(many / one, 2) if one else None
    return out


# --- the local URL (issue 28) ------------------------------------------------------------


def versioned(version: int) -> str:
    return f"export default async function run() {{\n  return {{ version: {version} }};\n}}\n"


class PodsReady:
    """When this process's own watch first saw each pod of a namespace Ready."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        from kubernetes import client, config, watch

        self.core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
        self.namespace = namespace
        self.seen: dict[str, float] = {}
        self.ips: dict[str, str] = {}
        self.changed = threading.Condition()
        self.stopping = False
        self.watch = watch.Watch()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.stopping:
            with contextlib.suppress(Exception):
                for event in self.watch.stream(
                    self.core.list_namespaced_pod, self.namespace, timeout_seconds=30
                ):
                    pod = event["object"]
                    ready = any(
                        c.type == "Ready" and c.status == "True"
                        for c in (pod.status.conditions or [])
                    )
                    name = pod.metadata.name
                    if ready and name not in self.seen and not pod.metadata.deletion_timestamp:
                        with self.changed:
                            self.seen[name] = time.monotonic()
                            self.ips[name] = pod.status.pod_ip
                            self.changed.notify_all()

    def new_ready(self, known: set[str], timeout: float = 60) -> tuple[str, float]:
        with self.changed:
            if not self.changed.wait_for(lambda: set(self.seen) - known, timeout):
                raise TimeoutError("no new pod Ready")
            name = sorted(set(self.seen) - known, key=self.seen.__getitem__)[0]
            return name, self.seen[name]

    def stop(self) -> None:
        self.stopping = True
        self.watch.stop()


def timed_get(conn: Any, path: str) -> float:
    t0 = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    return (time.perf_counter() - t0) * 1000


def post_run(url: str, timeout: float = 30) -> tuple[int, int | None]:
    """POST /run through the URL: (status, the version that answered)."""
    request = urllib.request.Request(
        f"{url}/run", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read())
            return answer.status, body["outputs"]["greet"]["version"]
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:
        return 0, None


def bench_url(kubeconfig: Path, tmp: Path, rollouts: int = 50, rate: float = 20) -> dict[str, Any]:
    """The local URL: the latency it adds against a direct request to the pod (GET /health,
    one kept-alive connection each, alternating); requests failed while `rollouts` saves
    roll out under a steady `rate` of POST /run; and, per rollout, from this process's own
    watch seeing the new pod Ready to the first request the URL sends to it (requests
    sent back to back from that moment)."""
    import http.client

    namespace = "url"
    directory = copy_example(tmp, "hello", "url-bench")
    (directory / "nodes" / "greet.ts").write_text(versioned(0))
    ready = PodsReady(kubeconfig, namespace)
    proc = Process(
        [
            str(directory),
            "--kubeconfig",
            str(kubeconfig),
            "--no-tui",
            "-n",
            namespace,
            "--create-namespace",
            "--debounce-ms",
            "20",
        ]
    )
    out: dict[str, Any] = {}
    try:
        url = served_url(proc)
        proc.wait(lambda line: "start → " in line)
        pod, _ = ready.new_ready(set())
        host, port = url.removeprefix("http://").split(":")
        via = http.client.HTTPConnection(host, int(port), timeout=30)
        direct = http.client.HTTPConnection(ready.ips[pod], 8080, timeout=30)
        through, straight = [], []
        for _ in range(300):
            through.append(timed_get(via, "/health"))
            straight.append(timed_get(direct, "/health"))
        via.close()
        direct.close()
        out["health_direct_ms"] = stats(straight)
        out["health_through_url_ms"] = stats(through)
        out["added_p50_ms"] = round(statistics.median(through) - statistics.median(straight), 1)

        answers: list[tuple[float, int, int | None]] = []
        stop = threading.Event()

        def load() -> None:
            start, sent = time.monotonic(), 0
            while not stop.is_set():
                status, version = post_run(url)
                answers.append((time.monotonic(), status, version))
                sent += 1
                stop.wait(max(0.0, start + sent / rate - time.monotonic()))  # the pace

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        to_serving: list[float] = []
        for version in range(1, rollouts + 1):
            mark = len(proc.lines)
            (directory / "nodes" / "greet.ts").write_text(versioned(version))
            pod, t_ready = ready.new_ready(set(ready.seen))
            while True:
                sent_at = time.monotonic()
                _status, answered = post_run(url)
                if answered == version:
                    to_serving.append((sent_at - t_ready) * 1000)
                    break
            proc.wait(lambda line: "from save to Ready" in line, mark, timeout=60)
        stop.set()
        loader.join()
        failed = [(status, version) for _, status, version in answers if status != 200]
        versions = [version for _, status, version in answers if version is not None]
        out["under_load"] = {
            "rollouts": rollouts,
            "requests": len(answers),
            "failed": len(failed),
            "failed_sample": failed[:5],
            "answered_by_an_older_save_after_a_newer": sum(
                1 for a, b in itertools.pairwise(versions) if b < a
            ),
        }
        out["ready_to_url_serving_ms"] = stats(to_serving)
    finally:
        ready.stop()
        proc.stop()
    return out


def interrupt(proc: Process) -> float:
    t0 = time.monotonic()
    proc.proc.send_signal(signal.SIGINT)
    try:
        proc.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.proc.kill()
        proc.proc.wait()
        return float("inf")
    return time.monotonic() - t0


# --- the embedded cluster's own costs (issue 15) -------------------------------------------


def bench_sim_cron(tmp: Path, cronjobs: int = 100) -> dict[str, Any]:
    """API latency (GET of a ConfigMap, p99) while `cronjobs` CronJobs fire in the same
    minute, against the same cluster idle. The controller's clock is moved to the minute."""
    clock_now = [time.time()]
    settings = SimSettings(
        schedule_delay=0,
        mount_delay=0,
        pull_delay=0,
        start_delay=0,
        stop_delay=0,
        cron_tick=0.2,
        clock=lambda: clock_now[0],
    )
    with EmbeddedCluster(settings) as cluster:
        import urllib3

        http = urllib3.PoolManager()
        config_maps = resources.of_kind("v1", "ConfigMap")
        cron = resources.of_kind("batch/v1", "CronJob")

        def setup() -> None:
            cluster.api.create(
                config_maps, "default", {"metadata": {"name": "probe"}, "data": {}}, "bench"
            )
            for i in range(cronjobs):
                cluster.api.create(
                    cron,
                    "default",
                    {
                        "metadata": {"name": f"tick-{i}"},
                        "spec": {
                            "schedule": "* * * * *",
                            "jobTemplate": {
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "restartPolicy": "Never",
                                            "containers": [
                                                {
                                                    "name": "t",
                                                    "image": "curlimages/curl:latest",
                                                    "command": [
                                                        "curl",
                                                        "-sS",
                                                        "http://nowhere.default.svc:8080/run",
                                                    ],
                                                }
                                            ],
                                        }
                                    }
                                }
                            },
                        },
                    },
                    "bench",
                )

        cluster.call(setup, timeout=60)
        url = f"{cluster.url}/api/v1/namespaces/default/configmaps/probe"

        def sample(seconds: float) -> list[float]:
            times = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                t0 = time.monotonic()
                http.request("GET", url)
                times.append((time.monotonic() - t0) * 1000)
            return times

        idle = sample(2.0)
        clock_now[0] = (int(time.time()) // 60 + 1) * 60 + 1  # just past the next minute
        firing = sample(4.0)
        jobs = len(cluster.call(lambda: cluster.store.list(resources.of_kind("batch/v1", "Job"))))
    return {
        "cronjobs": cronjobs,
        "jobs_started": jobs,
        "idle_get_ms": stats(idle),
        "during_the_minute_get_ms": stats(firing),
        "p99_idle_ms": round(sorted(idle)[int(len(idle) * 0.99)], 1),
        "p99_during_the_minute_ms": round(sorted(firing)[int(len(firing) * 0.99)], 1),
    }


@contextmanager
def sim_process(config: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m devloop.sim` as its own process, writing `config`: (process, its URL);
    terminated on leaving."""
    sim = subprocess.Popen(
        [PY, "-m", "devloop.sim", "--kubeconfig", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline()
        url = re.search(r"serving on (\S+)", line)
        assert url, line
        yield sim, url.group(1)
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=15)
        except subprocess.TimeoutExpired:
            sim.kill()


def bench_sim_memory(tmp: Path, applies: int = 200) -> dict[str, Any]:
    """The embedded cluster's RSS (its own process) at start, after `applies` server-side
    applies of a different 900 KB ConfigMap each time, and after deleting it."""
    import urllib3

    with sim_process(tmp / "kubeconfig-memory") as (sim, base):
        process = psutil.Process(sim.pid)
        http = urllib3.PoolManager()
        path = f"{base}/api/v1/namespaces/default/configmaps/big"
        before = process.memory_info().rss
        for i in range(applies):
            body = json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "big"},
                    "data": {"code": f"{i:06d}" + "x" * (900 * 1024)},
                }
            )
            http.request(
                "PATCH",
                f"{path}?fieldManager=bench&force=true",
                body=body,
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
        loaded = process.memory_info().rss
        http.request("DELETE", path)
        http.request("GET", f"{base}/api/v1/namespaces/default/configmaps")  # settle
        after = process.memory_info().rss
        return {
            "applies": applies,
            "rss_mb_at_start": round(before / 2**20, 1),
            "rss_mb_after_applies": round(loaded / 2**20, 1),
            "rss_mb_after_delete": round(after / 2**20, 1),
        }


LARGE_SAVES_SCRIPT = """
import json, sys, psutil
from pathlib import Path
from devloop.render import RenderOptions, render
root, saves = Path(sys.argv[1]), int(sys.argv[2])
node = root / "nodes" / "big.ts"
line = 'console.log("a line of a large generated node file, 64 bytes");\\n'
body = line * (850 * 1024 // len(line))
me = psutil.Process()
def rss():
    procs = [me, *me.children(recursive=True)]
    both = sum(p.memory_info().rss for p in procs)
    return round(me.memory_info().rss / 2**20, 1), round(both / 2**20, 1)
marks = {}
for i in range(saves + 1):
    node.write_text(f"// save {i}\\n" + body + "export default async () => ({});\\n")
    result = render(root, RenderOptions())
    assert not isinstance(result, list), result
    if i in (1, 100, saves):
        marks[i] = rss()
print(json.dumps(marks))
"""


def bench_sim_large_list(tmp: Path, objects: int = 1500, kib: int = 64) -> dict[str, Any]:
    """/version latency on the embedded cluster (its own process) while another client lists
    `objects` ConfigMaps of `kib` KiB each (issue 29 §11: one large list held /version for
    7.3 s before lists were streamed)."""
    import urllib3

    with sim_process(tmp / "kubeconfig-large-list") as (_sim, base):
        http = urllib3.PoolManager(maxsize=4)
        path = f"{base}/api/v1/namespaces/default/configmaps"
        for i in range(objects):
            body = {"metadata": {"name": f"big-{i}"}, "data": {"k": "x" * (kib * 1024)}}
            http.request("POST", path, body=json.dumps(body))
        listing = threading.Event()
        lists: list[float] = []

        def lister() -> None:
            for _ in range(3):
                t0 = time.monotonic()
                http.request("GET", path)
                lists.append((time.monotonic() - t0) * 1000)
            listing.set()

        thread = threading.Thread(target=lister)
        thread.start()
        during: list[float] = []
        while not listing.is_set():
            t0 = time.monotonic()
            http.request("GET", f"{base}/version")
            during.append((time.monotonic() - t0) * 1000)
        thread.join()
        return {
            "list_mb": round(objects * kib / 1024, 1),
            "list_ms": stats(lists),
            "version_during_list_ms": stats(during),
        }


def bench_engine(tmp: Path, starts: int = 20) -> dict[str, Any]:
    """The engine as a real process (issue 25): its cold start (spawn → /health answers) and
    RSS; and the memory of a session against the embedded cluster in its own process with
    two workflows deployed (two engine pods), each watched by a headless pdwatch."""
    import urllib3

    from devloop.node.denoengine import ENGINE_MAIN, find_deno
    from devloop.node.permissions import ENTRYPOINT_FLAGS, local_flags

    deno = find_deno()
    assert deno is not None, "deno is a dependency"
    directory = copy_example(tmp, "hello", "engine-bench")
    http = urllib3.PoolManager()
    cold: list[float] = []
    engine_rss: list[float] = []
    for n in range(starts):
        port = 18600 + n
        t0 = time.monotonic()
        engine = subprocess.Popen(
            [
                deno,
                "run",
                *local_flags(ENTRYPOINT_FLAGS, directory, f"127.0.0.1:{port}"),
                str(ENGINE_MAIN),
                "--workflow",
                str(directory / "workflow.yaml"),
                "--secrets",
                str(directory / "no-secrets"),
                "--port",
                str(port),
                "--hostname",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1"},
        )
        try:
            while True:
                try:
                    if (
                        http.request("GET", f"http://127.0.0.1:{port}/health", retries=False).status
                        == 200
                    ):
                        break
                except urllib3.exceptions.HTTPError:
                    time.sleep(0.002)
            cold.append((time.monotonic() - t0) * 1000)
            http.request("POST", f"http://127.0.0.1:{port}/run", body=b"{}")
            engine_rss.append(psutil.Process(engine.pid).memory_info().rss / 2**20)
        finally:
            engine.kill()
            engine.wait()

    config = tmp / "kubeconfig-engine"
    watchers: list[Process] = []
    with sim_process(config) as (sim, _base):
        try:
            for name in ("hello", "uptime-prober"):
                folder = copy_example(tmp, name, f"two-{name}")
                proc = Process([str(folder), "--kubeconfig", str(config), "--no-tui"])
                proc.wait(lambda line: " Ready in " in line)
                watchers.append(proc)
            cluster = psutil.Process(sim.pid)
            engines = [p for p in cluster.children(recursive=True) if "deno" in p.name()]
            session = {
                "embedded_cluster_mb": round(cluster.memory_info().rss / 2**20, 1),
                "engine_pods": len(engines),
                "engines_mb": round(sum(p.memory_info().rss for p in engines) / 2**20, 1),
                "pdwatch_each_mb": [
                    round(psutil.Process(w.proc.pid).memory_info().rss / 2**20, 1) for w in watchers
                ],
            }
        finally:
            for proc in watchers:
                proc.stop()
    return {
        "cold_start_ms": stats(cold),
        "engine_rss_mb": stats(engine_rss),
        "two_pods_session": session,
    }


def bench_large_file_saves(tmp: Path, saves: int = 1000) -> dict[str, Any]:
    """RSS of a process that renders (reads, hashes, syntax-checks) a workflow after each of
    `saves` saves of an 850 KB node file: pdwatch's own, and with its syntax-check worker."""
    root = copy_example(tmp, "hello", "large-saves")
    proc = subprocess.run(
        [PY, "-c", LARGE_SAVES_SCRIPT, str(root), str(saves)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    marks = json.loads(proc.stdout)
    return {
        "saves": saves,
        "file_kb": 850,
        **{f"rss_mb_after_{n}": own for n, (own, _) in marks.items()},
        **{f"rss_mb_with_worker_after_{n}": both for n, (_, both) in marks.items()},
    }


# --- 2. the baseline: watchfiles CLI + kubectl ----------------------------------------------


def bench_baseline(
    cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path, edits: int
) -> dict[str, Any]:
    directory = copy_example(tmp, "hello", "baseline")
    namespace = "baseline"
    kubectl = str(BIN / "kubectl")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    # `kubectl create namespace` sends protobuf, which the embedded cluster does not decode
    namespaces = resources.of_kind("v1", "Namespace")
    cluster.call(
        lambda: cluster.api.create(namespaces, "", {"metadata": {"name": namespace}}, "bench")
    )
    rendered = subprocess.run(
        [
            PY,
            "-m",
            "devloop",
            str(directory),
            "--render",
            "-n",
            namespace,
            "--runtime-class",
            "gvisor",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(
        [kubectl, "apply", "--server-side", "-f", "-"],
        input=rendered,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    script = (
        f"{kubectl} create configmap hello-code -n {namespace} "
        f"--from-file=workflow.yaml={directory}/workflow.yaml "
        f"--from-file=nodes__greet.ts={directory}/nodes/greet.ts "
        f"--dry-run=client -o yaml | {kubectl} apply --server-side -f - && "
        f"{kubectl} rollout restart deployment/hello -n {namespace}"
    )
    watcher = subprocess.Popen(
        [
            str(BIN / "watchfiles"),
            "--target-type",
            "command",
            f"sh -c '{script}'",
            str(directory / "nodes"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    figures: dict[str, list[float]] = {"a_configmap_applied_ms": [], "b_restart_reached_ms": []}
    try:
        time.sleep(4)  # watchfiles runs the command once at start; let it finish
        cluster.request_log = []
        for i in range(edits):
            log_mark = len(cluster.request_log)
            (directory / "nodes" / "greet.ts").write_text(node_code(f"edit {i}"))
            t0 = time.monotonic()
            deadline = t0 + 5  # normally ~0.2 s; none comes when kubectl skips the restart
            t_restart = None
            while t_restart is None and time.monotonic() < deadline:
                time.sleep(0.02)
                requests = requests_since(cluster, log_mark)
                t_restart = first(
                    requests, "PATCH", f"/namespaces/{namespace}/deployments/hello", apply=False
                )
            requests = requests_since(cluster, log_mark)
            t_cm = first(requests, "PATCH", f"/namespaces/{namespace}/configmaps/hello-code")
            if t_cm is not None:
                figures["a_configmap_applied_ms"].append((t_cm - t0) * 1000)
            if t_restart is not None:
                figures["b_restart_reached_ms"].append((t_restart - t0) * 1000)
            time.sleep(0.5)
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(timeout=10)
        except subprocess.TimeoutExpired:
            watcher.kill()
        cluster.request_log = None
    out: dict[str, Any] = {k: stats(v) for k, v in figures.items()}
    out["edits"] = edits
    out["edits_without_restart"] = edits - len(figures["b_restart_reached_ms"])
    return out


# --- 3. a burst of writes --------------------------------------------------------------------


def bench_burst(cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path) -> dict[str, Any]:
    directory, proc = start_headless(tmp, kubeconfig, "burst", "burst")
    try:
        mark = len(proc.lines)
        files = [directory / "nodes" / f"part{i}.ts" for i in range(4)]
        start = time.monotonic()
        for n in range(200):
            files[n % 4].write_text(f"// write {n}\n")
            time.sleep(max(0.0, start + (n + 1) * 0.005 - time.monotonic()))
        t_last = time.monotonic()
        final = {f"nodes__part{i}.ts": f"// write {196 + i}\n" for i in range(4)}

        config_maps = resources.of_kind("v1", "ConfigMap")

        def live() -> bool:
            cm = cluster.call(lambda: cluster.store.find(config_maps, "burst", "hello-code"))
            data = (cm or {}).get("data") or {}
            return all(data.get(k) == v for k, v in final.items())

        index = mark
        t_live = None
        while t_live is None:
            t, _, index = proc.wait(lambda line: "from save to Ready" in line, index, 30)
            index += 1
            if live():
                t_live = t
        time.sleep(2.5)  # would another cycle follow? (debounce + max wait have passed)
        cycles = sum(1 for _, line in proc.lines[mark:] if " changed → " in line)
        return {
            "writes": 200,
            "burst_ms": round((t_last - start) * 1000),
            "cycles": cycles,
            "final_live_after_last_write_ms": round((t_live - t_last) * 1000),
        }
    finally:
        proc.stop()


# --- 4. idle cost ----------------------------------------------------------------------------


def measure_idle(pid: int, seconds: float) -> dict[str, float]:
    process = psutil.Process(pid)
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    peak_kb = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    return {
        "seconds": seconds,
        "cpu_seconds": round(cpu, 3),
        "cpu_percent_of_one_core": round(100 * cpu / seconds, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }


def bench_idle(kubeconfig: Path, tmp: Path, seconds: float) -> dict[str, Any]:
    directory, proc = start_headless(tmp, kubeconfig, "idle", "idle")
    try:
        time.sleep(1)
        headless = measure_idle(proc.proc.pid, seconds)
    finally:
        proc.stop()
    tui: dict[str, Any] = {"skipped": "tmux not installed"}
    tmux = shutil.which("tmux")
    if tmux:
        socket = f"pdwatch-bench-{os.getpid()}"
        command = f"cd {ROOT} && exec {PY} -m devloop {directory} --kubeconfig {kubeconfig} -n idle"
        subprocess.run(
            [tmux, "-L", socket, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", command],
            check=True,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                screen = subprocess.run(
                    [tmux, "-L", socket, "capture-pane", "-p", "-t", "b"],
                    capture_output=True,
                    text=True,
                ).stdout
                if "✓" in screen and "● watching" in screen:
                    break
                time.sleep(0.2)
            pid = int(
                subprocess.run(
                    [tmux, "-L", socket, "list-panes", "-t", "b", "-F", "#{pane_pid}"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()[0]
            )
            time.sleep(1)
            tui = measure_idle(pid, seconds)
        finally:
            subprocess.run([tmux, "-L", socket, "kill-server"], capture_output=True)
    return {"headless": headless, "tui_in_tmux": tui}


# --- 5. start-up -------------------------------------------------------------------------------


def bench_startup(tmp: Path) -> dict[str, Any]:
    help_ms = []
    for _ in range(10):
        t0 = time.monotonic()
        subprocess.run([PY, "-m", "devloop", "--help"], capture_output=True, check=True)
        help_ms.append((time.monotonic() - t0) * 1000)
    ready_ms, stop_ms = [], []
    for i in range(3):
        directory = copy_example(tmp, "hello", f"startup{i}")
        proc = Process([str(directory), "--embedded", "--no-tui"])
        t, _, _ = proc.wait(lambda line: "start → " in line)
        ready_ms.append((t - proc.started) * 1000)
        stop_ms.append(proc.stop() * 1000)
    return {
        "help_ms": stats(help_ms),
        "process_start_to_first_ready_embedded_ms": stats(ready_ms),
        "sigterm_to_exit_ms": stats(stop_ms),
    }


# --- 6. scale ------------------------------------------------------------------------------------


def make_workflow(root: Path, n_files: int, bytes_per_file: int) -> Path:
    nodes = "".join(f"  n{i}:\n    path: ./nodes/n{i}.ts\n" for i in range(n_files))
    (root / "nodes").mkdir(parents=True)
    (root / "workflow.yaml").write_text(
        f'name: bench\nversion: "1.0"\ntriggers:\n  - type: manual\nnodes:\n{nodes}edges: []\n'
    )
    body = ("// generated\n" + "x" * 70 + "\n") * max(1, bytes_per_file // 84)
    for i in range(n_files):
        (root / "nodes" / f"n{i}.ts").write_text(body + EXPORT)
    return root


def bench_scale(cluster: EmbeddedCluster, tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    largest: Bundle | None = None
    for n, size in [(10, 1000), (100, 1000), (500, 1700)]:
        root = make_workflow(tmp / f"scale{n}", n, size)
        samples = []
        for _ in range(15):
            t0 = time.perf_counter()
            result = render(root)
            samples.append((time.perf_counter() - t0) * 1000)
            assert isinstance(result, Bundle), result
        out[f"render_and_hash_{n}_files"] = {**stats(samples), "code_bytes": result.code_bytes}
        largest = result
    assert largest is not None

    async def apply_largest() -> list[float]:
        from kubernetes import client

        from devloop.kube.client import Kube

        api = client.ApiClient(client.Configuration(host=cluster.url))
        kube = Kube(api, "default")
        times = []
        for i in range(5):
            cm = json.loads(json.dumps(largest.config_map))
            cm["data"]["workflow.yaml"] += f"# {i}\n"
            t0 = time.perf_counter()
            await kube.apply(cm)
            times.append((time.perf_counter() - t0) * 1000)
        await kube.close()
        api.close()
        return times

    out["apply_largest_configmap_ms"] = {
        **stats(asyncio.run(apply_largest())),
        "code_bytes": largest.code_bytes,
    }
    return out


# --- 7. log throughput ----------------------------------------------------------------------------


def flood(cluster: EmbeddedCluster, namespace: str, pod_prefix: str, lines: int) -> None:
    def write() -> None:
        assert cluster.node is not None
        for worker in cluster.node.pods.values():
            if (
                worker.namespace == namespace
                and worker.name.startswith(pod_prefix)
                and worker.container is not None
            ):
                run = worker.runs[-1]
                for i in range(lines):
                    run.append(f"flood line {i}")
                run.append("flood-end")
                return
        raise RuntimeError("no running pod to flood")

    cluster.call(write)


def bench_logs_plain(
    cluster: EmbeddedCluster, kubeconfig: Path, tmp: Path, lines: int
) -> dict[str, Any]:
    _, proc = start_headless(tmp, kubeconfig, "logs", "logs")
    try:
        mark = len(proc.lines)
        t0 = time.monotonic()
        flood(cluster, "logs", "hello-", lines)
        t_end, _, _ = proc.wait(lambda line: line.endswith("] flood-end"), mark, 120)
        printed = sum(1 for _, line in proc.lines[mark:] if "] flood line " in line)
        return {"lines": lines, "printed": printed, "lines_per_second": round(lines / (t_end - t0))}
    finally:
        proc.stop()


def bench_logs_tui(tmp: Path, lines: int, runs: int) -> dict[str, Any]:
    """`runs` floods, each in a fresh process pair: the slowest rate and the longest stall.

    One run is not enough to say "never": a stall depends on where a garbage collection
    or a big screen update lands in the flood.
    """
    each = [_logs_tui_once(tmp / f"tui-run-{n}", lines) for n in range(runs)]
    return {
        "lines": lines,
        "runs": each,
        "lines_per_second": min(r["lines_per_second"] for r in each),
        "longest_ui_stall_ms": max(r["longest_ui_stall_ms"] or 0 for r in each),
    }


def _logs_tui_once(tmp: Path, lines: int) -> dict[str, Any]:
    """The TUI (headless Textual, real loop) following a pod that logs `lines` lines at start.

    The cluster runs in its own process, as a real one would, and the flood comes from the
    engine itself: a node file whose top-level console.log lines it prints while loading.
    """
    from kubernetes import client

    from devloop import events
    from devloop.daemon import settle_heap
    from devloop.kube.client import Kube
    from devloop.loop import DevLoop, LoopSettings
    from devloop.render import RenderOptions
    from devloop.ui.tui import PdwatchApp
    from devloop.ui.widgets import LogView
    from devloop.ui.workflowview import Session

    tmp.mkdir()
    directory = copy_example(tmp, "hello", "logs-tui")
    kubeconfig = tmp / "kubeconfig-logs-tui"
    sim = subprocess.Popen(
        [PY, "-u", "-m", "devloop.sim", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert sim.stdout is not None
    url = sim.stdout.readline().split(" on ")[1].split(" ")[0]
    flood_code = "".join(f'console.log("flood line {i}");\n' for i in range(lines)) + EXPORT

    async def run() -> dict[str, Any]:
        api = client.ApiClient(client.Configuration(host=url))
        loop = DevLoop(
            LoopSettings(directory, RenderOptions("default"), "pdwatch-embedded"),
            Kube(api, "default"),
            lambda e: None,
        )
        settle_heap()  # as run_daemon does once the loop exists
        app = PdwatchApp(loop, Session(str(directory), "pdwatch-embedded", True, "default"))
        finished = asyncio.Event()

        def emit(event: events.Event) -> None:
            if isinstance(event, events.CycleFinished):
                finished.set()
            app.emit(event)

        loop.emit = emit
        gaps: list[float] = []
        async with app.run_test(size=(120, 40)) as pilot:
            await asyncio.wait_for(finished.wait(), 30)
            await pilot.pause(0.5)
            last = [time.monotonic()]

            def tick() -> None:
                now = time.monotonic()
                gaps.append(now - last[0])
                last[0] = now

            app.set_interval(0.01, tick)
            await pilot.pause(0.2)
            gaps.clear()
            t0 = time.monotonic()
            (directory / "nodes" / "greet.ts").write_text(flood_code)
            view = app.query_one(LogView)
            last_line = f"flood line {lines - 1}"
            # the engine logs its DAG and "Listening" after the module's output
            while not any(line.endswith(last_line) for line in list(view.lines_kept)[-8:]):
                await asyncio.sleep(0.01)
            t_end = time.monotonic()
            loop.quit()
        await loop.kube.close()
        api.close()
        return {
            "lines": lines,
            "seconds_from_save_to_last_line": round(t_end - t0, 2),
            "lines_per_second": round(lines / (t_end - t0)),
            "longest_ui_stall_ms": round(max(gaps) * 1000, 1) if gaps else None,
        }

    try:
        return asyncio.run(run())
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=10)  # drain its last line


# --- main --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                line.split(":", 1)[1].strip() for line in info if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--log-lines", type=int, default=20_000)
    parser.add_argument("--tui-flood-runs", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--rollouts", type=int, default=50)
    parser.add_argument(
        "--url-kubeconfig",
        type=Path,
        default=None,
        help="also the url section on this cluster (url_control_plane)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {}
    wanted = set(args.only) if args.only else None

    def section(name: str, fn: Callable[[], Any]) -> None:
        if wanted is not None and name not in wanted:
            return
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        results[name] = fn()
        print(json.dumps(results[name], indent=2), f"({time.monotonic() - t0:.0f} s)", flush=True)

    with (
        tempfile.TemporaryDirectory() as tmp_name,
        EmbeddedCluster(SimSettings.instant()) as cluster,
    ):
        tmp = Path(tmp_name)
        kubeconfig = cluster.write_kubeconfig(tmp / "kubeconfig")
        section(
            "latency_default_debounce",
            lambda: bench_latency(cluster, kubeconfig, tmp, 150, args.edits),
        )
        section(
            "latency_debounce_20ms", lambda: bench_latency(cluster, kubeconfig, tmp, 20, args.edits)
        )
        section(
            "baseline_watchfiles_kubectl",
            lambda: bench_baseline(cluster, kubeconfig, tmp, args.edits),
        )
        section("burst", lambda: bench_burst(cluster, kubeconfig, tmp))
        section("startup", lambda: bench_startup(tmp))
        section("scale", lambda: bench_scale(cluster, tmp))
        section("logs_plain", lambda: bench_logs_plain(cluster, kubeconfig, tmp, args.log_lines))
        section("logs_tui", lambda: bench_logs_tui(tmp, args.log_lines, args.tui_flood_runs))
        section("idle", lambda: bench_idle(kubeconfig, tmp, args.idle_seconds))
        section("events_20k", lambda: bench_events(cluster, kubeconfig, tmp, args.edits))
        section("quit", lambda: bench_quit(cluster, kubeconfig, tmp))
        section("long_session", lambda: bench_long_session(cluster, kubeconfig, tmp, args.cycles))
        section("sim_cron", lambda: bench_sim_cron(tmp))
        section("sim_memory", lambda: bench_sim_memory(tmp))
        section("large_file_saves", lambda: bench_large_file_saves(tmp, args.cycles))
        section("engine", lambda: bench_engine(tmp))
        section("sim_large_list", lambda: bench_sim_large_list(tmp))
        section("per_save", lambda: bench_per_save(tmp))
        section("five_workflows", lambda: bench_five_workflows(kubeconfig, tmp))
        section("url", lambda: bench_url(kubeconfig, tmp, args.rollouts))
        if args.url_kubeconfig:  # e.g. `python -m devloop.controlplane`'s
            section("url_control_plane", lambda: bench_url(args.url_kubeconfig, tmp, args.rollouts))
    if "latency_default_debounce" in results and "baseline_watchfiles_kubectl" in results:
        base, ours = results["baseline_watchfiles_kubectl"], results["latency_default_debounce"]
        results["baseline_over_pdwatch_p50"] = {
            key: round(base[key]["p50"] / ours[key]["p50"], 1)
            for key in ("a_configmap_applied_ms", "b_restart_reached_ms")
            if base[key].get("p50") and ours[key].get("p50")
        }
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    document = {
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "results": results,
    }
    path = ROOT / "bench" / "results.json"
    if wanted is not None and path.exists():  # a partial run updates the sections it ran
        previous = json.loads(path.read_text())
        previous.setdefault("results", {}).update(results)
        document = {
            **previous,
            "commit": commit,
            "date": document["date"],
            "machine": document["machine"],
        }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")
    from bench.report import main as write_report

    write_report()


if __name__ == "__main__":
    main()
