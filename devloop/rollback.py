"""A recorded revision as a Bundle to deploy: its code, with what the directory has now
for what history does not keep (the Secret's values, the engine image).

The revision's files are written to a temporary directory and rendered there as a save
would be (the Secret then from the directory's secrets), so a rollback is one ordinary deploy
cycle (one rollout, CronJobs as its workflow.yaml declares them, the same content hash
as when it was first deployed). The image is resolved from the workflow directory
(--image, then .pipedreamer/base-image.txt), as the running deploy had it.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from devloop import manifests
from devloop.history import Revision
from devloop.image import resolve_image
from devloop.problems import Problem
from devloop.render import Bundle, RenderOptions, render
from devloop.secrets import encode, read_secrets


def revision_bundle(
    directory: Path, revision: Revision, options: RenderOptions
) -> Bundle | list[Problem]:
    image, problems = resolve_image(directory, options.image)
    if image is None:
        return problems
    with tempfile.TemporaryDirectory(prefix="pdwatch-rollback-") as tmp:
        root = Path(tmp) / directory.name
        for path, text in revision.files().items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="")
        result = render(root, replace(options, image=image.image))
    if not isinstance(result, Bundle):
        return result
    if result.content_hash != revision.content_hash:
        return [Problem(revision.name, "its code does not render to what was recorded")]
    # The secrets as the directory has them now, read where a save reads them.
    data, problems = read_secrets(directory, str(directory))
    if problems:
        return problems
    secret = manifests.secret(result.workflow, result.namespace, encode(data)) if data else None
    return replace(result, secret=secret)
