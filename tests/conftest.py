"""Test configuration shared by the whole suite."""

from __future__ import annotations

import os

from hypothesis import settings

# CI replays the same examples every run (a red CI must be reproducible); local runs explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


# --- the embedded cluster, with the official client pointed at it over real HTTP ------------

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from kubernetes import client  # noqa: E402

from devloop.sim import EmbeddedCluster, SimSettings  # noqa: E402


@pytest.fixture
def cluster() -> Iterator[EmbeddedCluster]:
    with EmbeddedCluster(SimSettings.for_tests()) as running:
        yield running


@pytest.fixture
def api_client(cluster: EmbeddedCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration(host=cluster.url)
    with client.ApiClient(configuration) as api:
        yield api
