"""Which of the two workflow formats a directory is written in, and why.

The Pipedreamer format (seeds 000-002) and its successor, the Tentacular format
(TENTACULAR.md), share workflow.yaml's core; they differ in how their reference deploys
them (labels, image, Deno flags from a contract, an import map, a NetworkPolicy,
`$shared` secrets). The format is read from the workflow's own signs, strongest first;
`--format` overrides it. A workflow with no sign of either keeps the Pipedreamer format,
which is what pdwatch always deployed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads FORMATS without loading the parser
    from devloop.workflow import Workflow

PIPEDREAMER, TENTACULAR = "pipedreamer", "tentacular"
FORMATS = (PIPEDREAMER, TENTACULAR)
# A value of .secrets.yaml that is a `$shared.<name>` reference (never printed: the
# text is only matched).
SHARED_VALUE_RE = re.compile(r"""^[^#\s][^:#]*:\s*["']?\$shared\.""", re.MULTILINE)
MODULE_RE = {
    TENTACULAR: re.compile(r"""from\s+["']tentacular["']"""),
    PIPEDREAMER: re.compile(r"""from\s+["']pipedreamer["']"""),
}


@dataclass(frozen=True)
class FormatChoice:
    format: str
    reason: str  # shown by --render and the TUI header

    def __str__(self) -> str:
        return f"{self.format} ({self.reason})"


def detect(
    workflow: Workflow,
    marker_dirs: set[str],
    secrets_text: str | None,
    node_sources: dict[str, str],
    override: str | None = None,
) -> FormatChoice:
    """`marker_dirs`: which of `.tentacular` and `.pipedreamer` the directory holds;
    `secrets_text`: .secrets.yaml's text, if any; `node_sources`: path → code."""
    if override:
        return FormatChoice(override, "--format")
    if workflow.contract is not None:
        return FormatChoice(TENTACULAR, "workflow.yaml has a contract")
    if ".tentacular" in marker_dirs and ".pipedreamer" not in marker_dirs:
        return FormatChoice(TENTACULAR, "the directory has .tentacular/")
    if secrets_text is not None and SHARED_VALUE_RE.search(secrets_text):
        return FormatChoice(TENTACULAR, ".secrets.yaml uses $shared references")
    if ".pipedreamer" in marker_dirs:
        return FormatChoice(PIPEDREAMER, "the directory has .pipedreamer/")
    for fmt in FORMATS[::-1]:
        for path in sorted(node_sources):
            if MODULE_RE[fmt].search(node_sources[path]):
                return FormatChoice(fmt, f'{path} imports from "{fmt}"')
    if workflow.namespace is not None or workflow.metadata.given:
        return FormatChoice(TENTACULAR, "workflow.yaml has deployment or metadata")
    return FormatChoice(PIPEDREAMER, "no sign of the Tentacular format")
