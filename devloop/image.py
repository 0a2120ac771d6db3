"""Which engine image the Deployment runs (seed 001, decision 5).

`--image` > `.pipedreamer/base-image.txt` (or `.tentacular/base-image.txt`, the marker of
the reference's later releases; `.pipedreamer` wins when a directory has both) in the
workflow directory, else its nearest parent that has one up to the enclosing git
repository's root, or up to the user's home for a workflow in it outside any repository
(never above: a world-writable `/tmp` or `/` must not choose the image a workflow runs) >
the format's reference default (`pipedreamer-engine:latest`, or
`tentacular-engine:latest`). It depends only on the workflow directory, never on the
current directory. The daemon watches the files outside the workflow directory that could
choose the image (`files_outside`), so editing one deploys.

An image reference is checked against the grammar of distribution/reference (the one
container runtimes parse): a NUL, a space or a stray character would otherwise reach the
kubelet and fail there as InvalidImageName.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from devloop.problems import Problem, source_line
from devloop.safefiles import Refusal, read_inside

DEFAULT_IMAGE = "pipedreamer-engine:latest"
TENTACULAR_IMAGE = "tentacular-engine:latest"
MARKER_DIRS = (".pipedreamer", ".tentacular")
IMAGE_FILE_NAME = "base-image.txt"
IMAGE_FILE = Path(MARKER_DIRS[0]) / IMAGE_FILE_NAME
IMAGE_FILES = tuple(Path(d) / IMAGE_FILE_NAME for d in MARKER_DIRS)
IMAGE_FILE_MAX = 4096

# distribution/reference regexp.go: domain, path components, tag, digest.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?")
NAME_MAX = 255


@dataclass(frozen=True)
class ImageChoice:
    image: str
    source: str  # "--image", the file's path, or "default"


def reference_problem(image: str) -> str | None:
    """Why `image` is not an image reference a container runtime would pull, or None."""
    if not image:
        return "is empty"
    bad = next((c for c in image if ord(c) < 0x20 or c.isspace() or ord(c) == 0x7F), None)
    if bad is not None:
        return f"contains {'a space' if bad == ' ' else f'the control character U+{ord(bad):04X}'}"
    match = REFERENCE.fullmatch(image)
    if not match:
        return (
            "is not an image reference ([registry[:port]/]name[:tag][@digest], "
            "lowercase name, e.g. registry.local:5000/pipedreamer-engine:1.2)"
        )
    if len(match.group("name")) > NAME_MAX:
        return f"has a name longer than {NAME_MAX} characters"
    return None


def resolve_image(
    workflow_dir: Path, flag: str | None, default: str = DEFAULT_IMAGE
) -> tuple[ImageChoice | None, list[Problem]]:
    if flag is not None:
        reason = reference_problem(flag)
        if reason:
            return None, [Problem("--image", f"{flag!r} {reason}")]
        return ImageChoice(flag, "--image"), []
    for directory in _search_path(workflow_dir.resolve()):
        for relative in IMAGE_FILES:
            candidate = directory / relative
            if not os.path.lexists(candidate):
                continue
            return _read_image_file(candidate)
    return ImageChoice(default, "default"), []


def _read_image_file(candidate: Path) -> tuple[ImageChoice | None, list[Problem]]:
    shown = str(candidate)
    raw = read_inside(candidate, None, IMAGE_FILE_MAX)
    if isinstance(raw, Refusal):
        return None, [Problem(shown, raw.reason)]
    text = raw.decode("utf-8", errors="replace")
    lines = [(n, line.strip()) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    if len(lines) != 1:
        return None, [
            Problem(
                shown,
                "must contain one image reference on one line, e.g. "
                "registry.local:5000/pipedreamer-engine:1.2",
                lines[1][0] if len(lines) > 1 else None,
            )
        ]
    number, image = lines[0]
    reason = reference_problem(image)
    if reason:
        return None, [
            Problem(shown, f"the image {reason}", number, source=source_line(text, number))
        ]
    return ImageChoice(image, shown), []


def _search_path(start: Path, home: Path | None = None) -> list[Path]:
    """The workflow directory, then each parent up to the git root; outside a repository,
    up to the user's home when the workflow is in it, else the workflow directory alone."""
    chain = [start, *start.parents]
    for index, directory in enumerate(chain):
        if os.path.exists(directory / ".git"):  # never raises, even when unreadable
            return chain[: index + 1]
    home = home or Path(os.path.expanduser("~")).resolve()
    if home in chain:
        return chain[: chain.index(home) + 1]
    return [start]


def files_outside(workflow_dir: Path) -> list[Path]:
    """The image files in the workflow directory's parents that could choose its image."""
    return [d / f for d in _search_path(workflow_dir.resolve())[1:] for f in IMAGE_FILES]
