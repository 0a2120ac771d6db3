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
from devloop.image import DEFAULT_IMAGE, TENTACULAR_IMAGE, resolve_image
from devloop.problems import Problem
from devloop.render import Bundle, RenderOptions, format_of, local_secrets, render
from devloop.secrets import encode
from devloop.wfformat import PIPEDREAMER, TENTACULAR, FormatChoice
from devloop.workflow import WORKFLOW_FILE, parse_workflow


def revision_bundle(
    directory: Path, revision: Revision, options: RenderOptions
) -> Bundle | list[Problem]:
    files = revision.files()
    # The format as the directory would give it these files: its markers and secrets file
    # are the directory's own, its contract and imports the revision's.
    choice = FormatChoice(options.format or PIPEDREAMER, "--format")
    workflow, _ = parse_workflow(files.get(WORKFLOW_FILE, ""), revision.name)
    if workflow is not None:
        sources = {path: text for path, text in files.items() if path.endswith(".ts")}
        choice = format_of(directory, workflow, sources, options.format)
    default = TENTACULAR_IMAGE if choice.format == TENTACULAR else DEFAULT_IMAGE
    image, problems = resolve_image(directory, options.image, default)
    if image is None:
        return problems
    with tempfile.TemporaryDirectory(prefix="pdwatch-rollback-") as tmp:
        root = Path(tmp) / directory.name
        for path, text in files.items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="")
        result = render(root, replace(options, image=image.image, format=choice.format))
    if not isinstance(result, Bundle):
        return result
    if result.content_hash != revision.content_hash:
        return [Problem(revision.name, "its code does not render to what was recorded")]
    # The secrets as the directory has them now, read where a save reads them.
    data, problems = local_secrets(directory, str(directory), choice.format)
    if problems:
        return problems
    secret = (
        manifests.secret(result.workflow, result.namespace, encode(data), choice.format)
        if data
        else None
    )
    return replace(result, secret=secret, format=choice)
