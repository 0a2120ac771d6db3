"""The embedded cluster: a subset of the Kubernetes API server over real HTTP on loopback,
with a deployment controller and a simulated kubelet and engine.

It is both a product feature (`pdwatch DIR --embedded`: try pdwatch with no cluster) and
the test bed of every integration test. Where pdwatch depends on a behaviour, it does what
a real API server, controller manager and kubelet do.
"""

from devloop.sim.cluster import EmbeddedCluster, Rule, SimSettings

__all__ = ["EmbeddedCluster", "Rule", "SimSettings"]
