"""The node's own parts, without an API server: the pod network and the event recorder."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any

import pytest

from devloop.node.podnet import PodNetwork
from devloop.node.prober import first_probe, first_readiness_probe, until_relist
from devloop.node.recorder import BURST, COMBINED, EventRecorder

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="a network namespace needs root and iproute2",
)


def answers(network: PodNetwork, address: str) -> bool:
    listening = network.listen(address, 8080)
    try:
        with socket.create_connection((address, 8080), timeout=2):
            return True
    except OSError:
        return False
    finally:
        listening.close()


@needs_netns
def test_releasing_a_pod_address_keeps_the_others() -> None:
    """The first pod address released must not take the others with it (a subnet's
    secondary addresses go with its primary)."""
    network = PodNetwork.create()
    try:
        assert network.namespace is not None
        first, second, third = (network.allocate() for _ in range(3))
        assert len({first, second, third}) == 3 and first.startswith("10.244.")
        network.release(first)
        assert answers(network, second) and answers(network, third)
        again = network.allocate()
        assert again == first and answers(network, again)
    finally:
        network.close()


@needs_netns
def test_a_closed_network_leaves_nothing() -> None:
    network = PodNetwork.create()
    name = network.namespace
    assert name is not None
    network.close()
    listed = os.listdir("/var/run/netns") if os.path.isdir("/var/run/netns") else []
    assert name not in listed


class Wire:
    """Stands in for the REST client: records what the recorder would send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.sent.append((method, path, body))
        return body


POD = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "resourceVersion": "1"},
}


async def test_the_recorder_counts_repeats_and_spends_a_burst_of_25() -> None:
    wire = Wire()
    now = [1000.0]
    recorder = EventRecorder(wire, "kubelet", "node", clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(3):
        await recorder.record(POD, "Warning", "BackOff", "Back-off restarting")
    methods = [m for m, _, _ in wire.sent]
    assert methods == ["POST", "PATCH", "PATCH"]
    assert wire.sent[-1][2]["count"] == 3
    for i in range(40):
        await recorder.record(POD, "Warning", "Unhealthy", f"probe failed {i}")
    assert len(wire.sent) == BURST  # 3 + 22 more, then nothing
    assert recorder.dropped == 40 - (BURST - 3)
    written = [b["message"] for m, _, b in wire.sent if m == "POST" and b["reason"] == "Unhealthy"]
    assert written[:9] == [f"probe failed {i}" for i in range(9)]
    assert written[9] == COMBINED + "probe failed 9"  # the tenth distinct message
    now[0] += 300  # one more token after five minutes
    await recorder.record(POD, "Warning", "Other", "x")
    await recorder.record(POD, "Warning", "Other", "y")
    assert len(wire.sent) == BURST + 1
    # Normal events have a budget of their own
    await recorder.record(POD, "Normal", "Pulled", "present")
    assert wire.sent[-1][2]["reason"] == "Pulled"


@pytest.mark.parametrize(
    ("probe", "noticed", "first"),
    [
        ({"periodSeconds": 1}, 0.3, 0.3),  # pdwatch's: at the relist that sees it run
        ({"periodSeconds": 5, "initialDelaySeconds": 3}, 0.4, 5.4),  # the reference's
        ({"periodSeconds": 1, "initialDelaySeconds": 3}, 0.5, 3.5),  # whole seconds
        ({"initialDelaySeconds": 0}, 1.0, 1.0),
    ],
)
def test_the_first_readiness_probe_follows_the_relist(
    probe: dict[str, Any], noticed: float, first: float
) -> None:
    """prober_manager.go UpdatePodStatus asks for an immediate readiness run when the
    relist notices the container; doProbe skips it inside initialDelaySeconds."""
    assert first_readiness_probe(probe, noticed) == pytest.approx(first)


def test_liveness_keeps_its_ticker_and_relists_tick_each_second() -> None:
    assert first_probe({"periodSeconds": 10, "initialDelaySeconds": 5}) == 10
    assert until_relist(0.0) == 1.0
    assert until_relist(12.25) == pytest.approx(0.75)
