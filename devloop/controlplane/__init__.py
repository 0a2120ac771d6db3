"""Kubernetes' own control plane for tests and development (devloop.controlplane.cluster)."""
