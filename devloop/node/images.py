"""Images as the node's container runtime sees them: which references are valid, which
registries have them, and how containerd names them in its errors."""

from __future__ import annotations

import re

from devloop.sim.settings import SimSettings

# The first log line of an engine simulated because Deno cannot run here
NO_DENO = (
    "pdwatch: no Deno on this machine (pip install deno): this engine is simulated, and "
    "the nodes' code does not run"
)

# distribution/reference's grammar (reference/regexp.go): [domain/]path[:tag][@digest],
# path components lowercase alphanumerics joined by one of . _ __ or dashes
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
REFERENCE_RE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def valid_reference(image: str) -> bool:
    return bool(REFERENCE_RE.match(image))


def pullable(image: str, settings: SimSettings) -> bool:
    """Docker Hub has the images this cluster knows (settings.images: the engine, curl, and
    what a test names), and no other: a typo such as `pipedreamer-engne` fails as it fails on
    a kind node. Another registry (the user's own) has any image, except one whose host
    cannot exist (the reserved .invalid top-level domain, RFC 2606) or one a test marked
    unpullable."""
    host = image_reference(image).split("/", 1)[0]
    if image in settings.unpullable or host.endswith(".invalid"):
        return False
    return host != "docker.io" or image in settings.images


def image_reference(image: str) -> str:
    """How containerd names an image in its errors: docker.io/library/x:latest."""
    name = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name
