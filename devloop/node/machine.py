"""The node's machine, configured through the API: which images it has and how they
behave, and which registries ask for credentials or fail. A ConfigMap in kube-node-lease
(`pdwatch-node`) says it, as kwok's stages are API objects; the node watches it and, once
it has taken a version in, says so on its Node (annotation `pdwatch.dev/machine`), so
whoever changed it can wait for that instead of sleeping. The embedded cluster's tests
change the same settings in-process; on Kubernetes' own control plane, where the node runs
in another process, this is how they reach it.

Data keys: `images` (JSON: image → {"ready", "oom_killed", "exit_code"}),
`private-registries` and `failing-registries` (one host a line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devloop.sim.settings import ImageBehaviour, SimSettings

NAMESPACE = "kube-node-lease"
NAME = "pdwatch-node"
ANNOTATION = "pdwatch.dev/machine"


@dataclass(frozen=True)
class Machine:
    images: dict[str, ImageBehaviour] = field(default_factory=dict)
    private_registries: frozenset[str] = frozenset()
    failing_registries: frozenset[str] = frozenset()


def hosts(text: str) -> frozenset[str]:
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def parse(data: dict[str, str]) -> Machine:
    """The ConfigMap's data as a Machine; what cannot be read is left out."""
    images: dict[str, ImageBehaviour] = {}
    try:
        listed = json.loads(data.get("images") or "{}")
    except ValueError:
        listed = {}
    for image, said in (listed if isinstance(listed, dict) else {}).items():
        said = said if isinstance(said, dict) else {}
        exit_code = said.get("exit_code")
        images[str(image)] = ImageBehaviour(
            ready=bool(said.get("ready", True)),
            oom_killed=bool(said.get("oom_killed", False)),
            exit_code=exit_code if isinstance(exit_code, int) else None,
        )
    return Machine(
        images,
        hosts(data.get("private-registries", "")),
        hosts(data.get("failing-registries", "")),
    )


def render(machine: Machine) -> dict[str, str]:
    """The ConfigMap's data for a Machine (what the tests write)."""
    images = {
        image: {"ready": b.ready, "oom_killed": b.oom_killed, "exit_code": b.exit_code}
        for image, b in machine.images.items()
    }
    return {
        "images": json.dumps(images, sort_keys=True),
        "private-registries": "\n".join(sorted(machine.private_registries)),
        "failing-registries": "\n".join(sorted(machine.failing_registries)),
    }


@dataclass
class Baseline:
    """What the node's settings held before any ConfigMap: a change is applied on top of
    it, and a deleted ConfigMap puts it back."""

    images: dict[str, ImageBehaviour]
    private_registries: set[str]
    failing_registries: set[str]

    @classmethod
    def of(cls, settings: SimSettings) -> Baseline:
        return cls(
            dict(settings.images),
            set(settings.private_registries),
            set(settings.failing_registries),
        )

    def apply(self, settings: SimSettings, machine: Machine) -> None:
        settings.images = {**self.images, **machine.images}
        settings.private_registries = self.private_registries | machine.private_registries
        settings.failing_registries = self.failing_registries | machine.failing_registries


def taken_in(node: dict[str, Any]) -> str:
    """The ConfigMap version the node says it has taken in ("" for none)."""
    return str(((node.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION, ""))
