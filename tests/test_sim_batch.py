"""Cron triggers in the embedded cluster: schedules, Jobs, the trigger's curl reaching the
workflow's engine, history and concurrency, with the CronJob controller's clock moved
forward by the test (the embedded cluster's own clock; everything else is real)."""

from __future__ import annotations

import calendar
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop.render import Bundle, RenderOptions, render
from devloop.sim import EmbeddedCluster, SimSettings
from devloop.sim.cron import ScheduleError, next_run
from tests.helpers import write_tree
from tests.target import sim_only
from tests.test_sim_faults import EXAMPLES, kubectl

pytestmark = sim_only("tests the embedded cluster itself")


def at(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))


@pytest.mark.parametrize(
    ("schedule", "after", "fires"),
    [
        ("*/5 * * * *", "2026-11-24 12:03:10", "2026-11-24 12:05:00"),
        ("*/5 * * * *", "2026-11-24 12:05:00", "2026-11-24 12:10:00"),  # strictly after
        ("0 9 * * *", "2026-11-24 09:00:01", "2026-11-25 09:00:00"),
        ("@hourly", "2026-11-24 23:59:59", "2026-11-25 00:00:00"),
        ("@weekly", "2026-11-24 00:00:00", "2026-11-29 00:00:00"),  # a Sunday
        ("0 0 29 2 *", "2026-03-01 00:00:00", "2028-02-29 00:00:00"),
        ("0 0 1 * mon", "2026-11-24 00:00:00", "2026-11-30 00:00:00"),  # either day field
        ("30 6 * jan-mar sat,sun", "2026-11-24 00:00:00", "2027-01-02 06:30:00"),
        ("10-20/5 * * * *", "2026-11-24 12:16:00", "2026-11-24 12:20:00"),
        ("0 0 * * 0", "2026-11-24 00:00:00", "2026-11-29 00:00:00"),  # Sunday
        ("@every 90s", "2026-11-24 12:00:00", "2026-11-24 12:01:30"),
    ],
)
def test_next_run(schedule: str, after: str, fires: str) -> None:
    assert next_run(schedule, at(after)) == at(fires)


def test_day_of_week_7_is_refused_as_robfig_cron_v3_refuses_it() -> None:
    """robfig/cron v3 parser.go: dow bounds are 0-6 (Vixie cron's 7 for Sunday is not)."""
    with pytest.raises(ScheduleError, match=r"end of range \(7\) above maximum \(6\): 7"):
        next_run("0 0 * * 7", at("2026-11-24 00:00:00"))


class Clock:
    """The CronJob controller's wall clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def next_minute(self) -> None:
        """Just past the next minute of the later of this clock and the wall clock: a
        CronJob created after the wall clock turned a minute (its creationTimestamp is the
        wall clock's) is due at the minute after that one, not this clock's next."""
        self.now = (int(max(self.now, time.time())) // 60 + 1) * 60 + 1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def batch_cluster(clock: Clock) -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(SimSettings(cron_tick=0.05, clock=clock, time_scale=0.05)) as running:
        yield running


@pytest.fixture
def api(batch_cluster: EmbeddedCluster) -> Iterator[client.ApiClient]:
    with client.ApiClient(client.Configuration(host=batch_cluster.url)) as api_client:
        yield api_client


def wait_for(check: Callable[[], Any], timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {check}")


def deploy_with_cron(tmp_path: Path, api: client.ApiClient) -> Bundle:
    """The hello example with a named every-minute cron trigger and a node that logs and
    returns its input, applied as pdwatch does."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    text = (directory / "workflow.yaml").read_text()
    text = text.replace(
        "triggers:\n", "triggers:\n  - type: cron\n    name: tick\n    schedule: '* * * * *'\n", 1
    )
    echo = (
        "export default async function run(ctx: any, input: unknown) {\n"
        '  ctx.log.info("input", JSON.stringify(input));\n'
        "  return { input };\n}\n"
    )
    write_tree(directory, {"workflow.yaml": text, "nodes/greet.ts": echo})
    bundle = render(directory, RenderOptions("default"))
    assert isinstance(bundle, Bundle), bundle
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_config_map("default", bundle.code_snapshot)
    core.create_namespaced_service("default", bundle.service)
    apps.create_namespaced_deployment("default", bundle.deployment)
    (cron,) = bundle.cronjobs
    batch.create_namespaced_cron_job("default", cron)
    wait_for(
        lambda: (
            (apps.read_namespaced_deployment("hello", "default").status.ready_replicas or 0) == 1
        )
    )
    return bundle


def engine_log(api: client.ApiClient) -> str:
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod("default", label_selector="app.kubernetes.io/name=hello").items
    return "".join(core.read_namespaced_pod_log(p.metadata.name, "default") for p in pods)


def test_a_cron_trigger_posts_to_the_workflow_at_its_minute(
    tmp_path: Path, api: client.ApiClient, clock: Clock
) -> None:
    deploy_with_cron(tmp_path, api)
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    time.sleep(0.3)
    assert batch.list_namespaced_job("default").items == []  # not before its minute
    clock.next_minute()
    job = wait_for(lambda: next(iter(batch.list_namespaced_job("default").items), None))
    assert job.metadata.name == f"hello-cron-{int(clock.now // 60)}"
    assert job.metadata.labels["app.kubernetes.io/part-of"] == "hello"
    done = wait_for(
        lambda: (
            (j := batch.read_namespaced_job(job.metadata.name, "default")).status
            and j.status.succeeded
            and j
        )
    )
    assert [c.type for c in done.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    assert '[greet] INFO input {"trigger":"tick"}' in engine_log(api)
    (trigger_pod,) = core.list_namespaced_pod(
        "default", label_selector=f"job-name={job.metadata.name}"
    ).items
    assert trigger_pod.status.phase == "Succeeded"
    printed = core.read_namespaced_pod_log(trigger_pod.metadata.name, "default")
    # what the engine answered, as curl printed it: the node's output, its input
    assert '"success": true' in printed and '"trigger": "tick"' in printed
    cron = wait_for(
        lambda: (
            (
                c := batch.read_namespaced_cron_job("hello-cron", "default")
            ).status.last_successful_time
            and c
        )
    )
    assert cron.status.last_schedule_time.timestamp() == (int(clock.now) // 60) * 60
    assert not cron.status.active
    reasons = {
        e.reason
        for e in core.list_namespaced_event("default").items
        if e.involved_object.name == "hello-cron"
    }
    assert {"SuccessfulCreate", "SawCompletedJob"} <= reasons


def test_kubectl_get_jobs_shows_a_completed_trigger(
    tmp_path: Path, api: client.ApiClient, clock: Clock, batch_cluster: EmbeddedCluster
) -> None:
    deploy_with_cron(tmp_path, api)
    clock.next_minute()
    batch = client.BatchV1Api(api)
    wait_for(
        lambda: any(
            j.status and j.status.succeeded for j in batch.list_namespaced_job("default").items
        )
    )
    kubeconfig = batch_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    got = kubectl(kubeconfig, "get", "jobs")
    assert got.returncode == 0, got.stderr
    header, row = (line.split() for line in got.stdout.strip().splitlines())
    assert header == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row[1:3] == ["Complete", "1/1"]


def test_history_keeps_the_newest_successful_jobs(
    tmp_path: Path, api: client.ApiClient, clock: Clock
) -> None:
    deploy_with_cron(tmp_path, api)
    batch = client.BatchV1Api(api)
    names = []
    for _ in range(4):
        clock.next_minute()
        name = f"hello-cron-{int(clock.now // 60)}"
        wait_for(
            lambda n=name: any(
                j.metadata.name == n and j.status and j.status.succeeded
                for j in batch.list_namespaced_job("default").items
            )
        )
        names.append(name)
    kept = wait_for(lambda: len(jobs := batch.list_namespaced_job("default").items) == 3 and jobs)
    assert sorted(j.metadata.name for j in kept) == sorted(
        names[1:]
    )  # successfulJobsHistoryLimit 3


def every_minute(name: str, container: dict[str, Any]) -> dict[str, Any]:
    """A CronJob running `container` every minute."""
    pod = {"restartPolicy": "Never", "containers": [container]}
    return {
        "metadata": {"name": name},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": pod}}},
        },
    }


def test_forbid_skips_a_run_while_the_last_one_still_runs(
    api: client.ApiClient, clock: Clock
) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    stuck = every_minute("stuck", {"name": "c", "image": "example.invalid/never:1"})
    stuck["spec"]["concurrencyPolicy"] = "Forbid"
    batch.create_namespaced_cron_job("default", stuck)
    clock.next_minute()
    wait_for(lambda: len(batch.list_namespaced_job("default").items) == 1)
    clock.next_minute()
    wait_for(
        lambda: any(
            e.reason == "JobAlreadyActive" for e in core.list_namespaced_event("default").items
        )
    )
    assert len(batch.list_namespaced_job("default").items) == 1


def test_a_trigger_that_cannot_reach_its_service_fails_the_job(
    api: client.ApiClient, clock: Clock
) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    curl = ["curl", "-sS", "--fail", "-X", "POST", "http://gone.default.svc.cluster.local:8080/run"]
    orphan = every_minute(
        "orphan", {"name": "trigger", "image": "curlimages/curl:latest", "command": curl}
    )
    orphan["spec"]["jobTemplate"]["spec"]["backoffLimit"] = 1
    batch.create_namespaced_cron_job("default", orphan)
    clock.next_minute()
    job = wait_for(
        lambda: next(
            (
                j
                for j in batch.list_namespaced_job("default").items
                if j.status and j.status.conditions
            ),
            None,
        )
    )
    assert [(c.type, c.reason) for c in job.status.conditions] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    pods = core.list_namespaced_pod("default", label_selector=f"job-name={job.metadata.name}").items
    assert len(pods) == 2 and {p.status.phase for p in pods} == {"Failed"}  # backoffLimit 1
    log = core.read_namespaced_pod_log(pods[0].metadata.name, "default")
    assert log == "curl: (6) Could not resolve host: gone.default.svc.cluster.local\n"
