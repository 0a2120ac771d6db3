"""Which engine image the Deployment runs (seed 001, decision 5).

`--image` > `.pipedreamer/base-image.txt` (in the workflow directory, else its
nearest parent that has one, stopping at the enclosing git repository's root
or the filesystem root) > `pipedreamer-engine:latest`. It depends only on the
workflow directory, never on the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devloop.problems import Problem

DEFAULT_IMAGE = "pipedreamer-engine:latest"
IMAGE_FILE = Path(".pipedreamer") / "base-image.txt"


@dataclass(frozen=True)
class ImageChoice:
    image: str
    source: str  # "--image", the file's path, or "default"


def resolve_image(workflow_dir: Path, flag: str | None) -> tuple[ImageChoice | None, list[Problem]]:
    if flag is not None:
        if not flag.strip() or any(c.isspace() for c in flag.strip()):
            return None, [Problem("--image", f"{flag!r} is not an image reference")]
        return ImageChoice(flag.strip(), "--image"), []
    for directory in _search_path(workflow_dir.resolve()):
        candidate = directory / IMAGE_FILE
        if candidate.is_file():
            text = candidate.read_text(encoding="utf-8", errors="replace").strip()
            if not text or any(c.isspace() for c in text):
                return None, [
                    Problem(
                        str(candidate),
                        "must contain one image reference, e.g. "
                        "registry.local:5000/pipedreamer-engine:1.2",
                    )
                ]
            return ImageChoice(text, str(candidate)), []
    return ImageChoice(DEFAULT_IMAGE, "default"), []


def _search_path(start: Path) -> list[Path]:
    """The workflow directory, then each parent up to the git root or the filesystem root."""
    out = []
    for directory in (start, *start.parents):
        out.append(directory)
        if (directory / ".git").exists():
            break
    return out
