"""Writing real workflow directories for tests."""

from __future__ import annotations

import json
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


# A node that waits ten minutes at load: the engine never serves /health meanwhile (its
# probes fail, and its liveness probe has it restarted after 5 s + 3 x 10 s). Black-box:
# it does that to any engine that follows the contract, on any cluster.
STUCK_AT_LOAD = (
    'console.log("waiting at load");\n'
    "await new Promise((resolve) => setTimeout(resolve, 600_000));\n"
    "export default async function run() {\n  return {};\n}\n"
)


def node_code(line: str) -> str:
    """A node module as the engine wants one (a default async function): it prints `line`
    when the engine loads it."""
    return (
        f"console.log({json.dumps(line)});\n"
        "export default async function run() {\n  return {};\n}\n"
    )


def crashing_node(message: str) -> str:
    """A node module that passes pdwatch's checks and throws `message` when the engine
    loads it: the engine exits at start."""
    return f"throw new Error({json.dumps(message)});\nexport default async function run() {{}}\n"


SHARED_VALUE = '{"token": "none", "webhook_secret": "none"}\n'


def copy_example(examples: Path, name: str, into: Path) -> Path:
    """An example copied to `into/<name>`, set up as the README says: a Tentacular example
    (it has `.secrets.yaml.example`) gets that file as `.secrets.yaml`, `into` becomes its
    repository (a `.git`), and each `$shared.<name>` a file of the repository's .secrets/."""
    import shutil

    directory = into / name
    shutil.copytree(examples / name, directory)
    template = directory / ".secrets.yaml.example"
    if template.exists():
        shutil.copy(template, directory / ".secrets.yaml")
        (into / ".git").mkdir(exist_ok=True)
        for line in template.read_text().splitlines():
            if "$shared." in line and not line.lstrip().startswith("#"):
                write_tree(into / ".secrets", {line.split("$shared.", 1)[1].strip(): SHARED_VALUE})
    return directory
