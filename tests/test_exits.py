"""Exits that finish their job (issue 24 §8): a closed stdout, a slow API server at quit, odd
inputs; each ends with its own exit code and a word, never a traceback or a silent 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from kubernetes import client

from devloop.sim import EmbeddedCluster
from tests.kubewait import is_ready, wait_for
from tests.looprig import EXAMPLES
from tests.processes import with_mode


def test_once_piped_to_head_still_deploys_and_exits_0(
    tmp_path: Path, cluster: EmbeddedCluster, api_client: client.ApiClient, namespace: str
) -> None:
    """`pdwatch DIR --once | head -1`: the reader goes after the first line; the deploy is
    finished all the same and the exit code is the deploy's (rich's default is exit 1 with
    no word at the second line)."""
    directory = tmp_path / "hello"
    shutil.copytree(EXAMPLES / "hello", directory)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devloop",
            *with_mode((directory, "--once", "--kubeconfig", kubeconfig)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert "namespace" in first
    assert proc.stderr.read() == ""
    core = client.CoreV1Api(api_client)
    wait_for(core.list_namespaced_pod, is_ready, 10, namespace=namespace)
