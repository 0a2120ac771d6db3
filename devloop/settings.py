"""Options shared by the commands; a light module, so parsing arguments imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ClusterOptions:
    """Which cluster, and how careful to be with it."""

    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    embedded: bool = False
    allow_contexts: set[str] = field(default_factory=set)
    create_namespace: bool = False
    rollout_timeout: float = 120
    history_limit: int = 10  # deploy revisions kept in the cluster
