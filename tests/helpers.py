"""Writing real workflow directories for tests."""

from __future__ import annotations

from pathlib import Path

MINIMAL_WORKFLOW = """\
name: my-workflow
version: "1.0"
triggers:
  - type: manual
nodes:
  fetch:
    path: ./nodes/fetch.ts
edges: []
"""

FETCH_TS = "export default async function run() {\n  return { ok: true };\n}\n"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path → text or bytes) below root; returns root."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return root


def minimal(root: Path, **extra: str | bytes) -> Path:
    """A valid one-node workflow, plus any extra files (keys use '/' via '__' is avoided:
    pass a dict through write_tree for paths)."""
    return write_tree(
        root, {"workflow.yaml": MINIMAL_WORKFLOW, "nodes/fetch.ts": FETCH_TS, **extra}
    )
