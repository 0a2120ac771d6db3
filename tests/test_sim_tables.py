"""Table responses: what `kubectl get` asks the embedded cluster for and prints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client

from devloop.sim import EmbeddedCluster
from devloop.sim.tables import human_duration, wanted_table_version
from tests.target import sim_only
from tests.test_sim_faults import EXAMPLES, kubectl

pytestmark = sim_only("tests the embedded cluster itself")

KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [  # apimachinery duration.HumanDuration
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (599, "9m59s"),
        (600, "10m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400 + 23 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_the_first_acceptable_media_type_wins() -> None:
    assert wanted_table_version(KUBECTL_ACCEPT) == "v1"
    assert wanted_table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert wanted_table_version("application/json") is None
    assert (
        wanted_table_version("application/json, application/json;as=Table;v=v1;g=meta.k8s.io")
        is None
    )
    assert wanted_table_version("") is None


def deploy_hello(tmp_path: Path, cluster: EmbeddedCluster) -> Path:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    done = subprocess.run(
        [sys.executable, "-m", "devloop", str(EXAMPLES / "hello"), "--once"],
        capture_output=True,
        text=True,
        env={"KUBECONFIG": str(kubeconfig), "PATH": ""},
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return kubeconfig


def columns_of(output: str) -> tuple[list[str], list[list[str]]]:
    lines = output.strip().splitlines()
    return lines[0].split(), [line.split() for line in lines[1:]]


def test_kubectl_get_pods_wide_shows_the_servers_columns(
    tmp_path: Path, cluster: EmbeddedCluster
) -> None:
    kubeconfig = deploy_hello(tmp_path, cluster)
    got = kubectl(kubeconfig, "get", "pods", "-o", "wide")
    assert got.returncode == 0, got.stderr
    header, rows = columns_of(got.stdout)
    assert header == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
        "READINESS", "GATES",
    ]  # fmt: skip
    (row,) = rows
    assert row[0].startswith("hello-")
    assert row[1:4] == ["1/1", "Running", "0"]
    assert row[6:9] == ["pdwatch-embedded", "<none>", "<none>"]


def test_kubectl_get_lists_what_pdwatch_deployed(tmp_path: Path, cluster: EmbeddedCluster) -> None:
    kubeconfig = deploy_hello(tmp_path, cluster)
    deployments = kubectl(kubeconfig, "get", "deployments", "-o", "wide")
    header, rows = columns_of(deployments.stdout)
    assert header[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[0][:4] == ["hello", "1/1", "1", "1"]
    assert rows[0][5:] == ["engine", "pipedreamer-engine:latest", "app.kubernetes.io/name=hello"]
    services = kubectl(kubeconfig, "get", "service", "hello")
    header, rows = columns_of(services.stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[0][:2] == ["hello", "ClusterIP"] and rows[0][3:5] == ["<none>", "8080/TCP"]
    configmaps = kubectl(kubeconfig, "get", "configmap", "hello-code")
    assert columns_of(configmaps.stdout)[0] == ["NAME", "DATA", "AGE"]
    events = kubectl(kubeconfig, "get", "events")
    header, rows = columns_of(events.stdout)
    assert header == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(r[1:3] == ["Normal", "Started"] and r[3].startswith("pod/hello-") for r in rows)


def get_json(url: str, accept: str) -> Any:
    response = urllib3.request("GET", url, headers={"Accept": accept}, timeout=10)
    assert response.status == 200, response.data
    return json.loads(response.data)


def test_table_rows_carry_metadata_or_the_object_or_nothing(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    body = {"metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"x": "1", "y": "2"}}
    client.CoreV1Api(api_client).create_namespaced_config_map("default", body)
    base = f"{cluster.url}/api/v1/namespaces/default/configmaps"
    table = get_json(base, KUBECTL_ACCEPT)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = next(r for r in table["rows"] if r["cells"][0] == "cm")
    assert row["cells"][1] == 2
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"a": "b"}
    full = get_json(f"{base}/cm?includeObject=Object", KUBECTL_ACCEPT)
    assert full["rows"][0]["object"]["data"] == {"x": "1", "y": "2"}
    bare = get_json(f"{base}?includeObject=None", KUBECTL_ACCEPT)
    assert all("object" not in r for r in bare["rows"])
    plain = get_json(base, "application/json")
    assert plain["kind"] == "ConfigMapList"


def watch_lines(response: Any) -> Iterator[bytes]:
    pending = b""
    for chunk in response.stream(65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines


def test_a_table_watch_sends_the_columns_once(
    cluster: EmbeddedCluster, api_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map("default", {"metadata": {"name": "one"}})
    url = f"{cluster.url}/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5"
    response = urllib3.request(
        "GET", url, headers={"Accept": KUBECTL_ACCEPT}, preload_content=False, timeout=10
    )
    lines = watch_lines(response)
    first = json.loads(next(lines))
    core.create_namespaced_config_map("default", {"metadata": {"name": "two"}})
    second = json.loads(next(lines))
    response.release_conn()
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
    assert "columnDefinitions" in first["object"]
    assert second["object"]["rows"][0]["cells"][0] == "two"
    assert "columnDefinitions" not in second["object"]
