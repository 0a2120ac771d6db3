"""Deploy history: each deploy that reached Ready, kept as an immutable ConfigMap beside
the live `<wf>-code` (which stays exactly as the specification has it).

A revision is `<wf>-code-r<N>`: the code ConfigMap's data (never the Secret), labelled
like every pdwatch object plus HISTORY_LABEL, annotated with its number, when it went
live, the code's content hash and the files changed from the revision before it. Code
equal to a recorded revision reuses it; the newest `limit` are kept. Which one is live
is not stored: it is the revision whose hash the Deployment's pod template carries, so a
rollback (which records nothing) is seen as it is. Pure functions; the cluster side is
kube/history.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devloop.codediff import unified
from devloop.codefiles import key_to_path
from devloop.manifests import CONTENT_HASH_ANNOTATION, Manifest

HISTORY_LABEL = "pdwatch/history"
REVISION_ANNOTATION = "pdwatch/revision"
DEPLOYED_AT_ANNOTATION = "pdwatch/deployed-at"
CHANGED_ANNOTATION = "pdwatch/changed-files"
# How many changed paths did not fit: all annotations of an object share 256 KiB, and a
# change of 16,000 files lists more than that.
CHANGED_MORE_ANNOTATION = "pdwatch/changed-files-more"
CHANGED_MAX_CHARS = 32 * 1024
VERSION_LABEL = "app.kubernetes.io/version"
DEFAULT_LIMIT = 10


@dataclass(frozen=True)
class Revision:
    number: int
    name: str
    deployed_at: str
    version: str
    content_hash: str
    changed: tuple[str, ...]
    data: dict[str, str]
    changed_more: int = 0  # changed paths left out of `changed`

    @property
    def changed_text(self) -> str:
        shown = ", ".join(self.changed) or "—"
        return f"{shown} and {self.changed_more:,} more" if self.changed_more else shown

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    def files(self) -> dict[str, str]:
        """path → text, as the workflow directory has them."""
        return {key_to_path(k): v for k, v in self.data.items()}


def revision_name(workflow: str, number: int) -> str:
    return f"{workflow}-code-r{number}"


def labels(workflow: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": workflow, HISTORY_LABEL: "true"}


def parse(config_map: dict[str, Any]) -> Revision | None:
    """A stored revision, or None for a ConfigMap that is not one (a label copied by hand)."""
    meta = config_map.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    try:
        number = int(annotations.get(REVISION_ANNOTATION, ""))
    except ValueError:
        return None
    changed = annotations.get(CHANGED_ANNOTATION, "")
    more = str(annotations.get(CHANGED_MORE_ANNOTATION, "0"))
    return Revision(
        number=number,
        name=str(meta.get("name", "")),
        deployed_at=str(annotations.get(DEPLOYED_AT_ANNOTATION, "")),
        version=str((meta.get("labels") or {}).get(VERSION_LABEL, "")),
        content_hash=str(annotations.get(CONTENT_HASH_ANNOTATION, "")),
        changed=tuple(p for p in changed.split(",") if p),
        data=dict(config_map.get("data") or {}),
        changed_more=int(more) if more.isdigit() else 0,
    )


def revisions(config_maps: list[dict[str, Any]]) -> list[Revision]:
    """The parsed revisions, newest first."""
    found = [r for r in (parse(cm) for cm in config_maps) if r is not None]
    return sorted(found, key=lambda r: r.number, reverse=True)


def files_changed(before: dict[str, str] | None, after: dict[str, str]) -> tuple[str, ...]:
    """Paths added, removed or edited between two code ConfigMaps' data."""
    old = before or {}
    keys = sorted(k for k in old.keys() | after.keys() if old.get(k) != after.get(k))
    return tuple(key_to_path(k) for k in keys)


def fitting(paths: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
    """The first paths that fit in CHANGED_MAX_CHARS, and how many did not."""
    size = 0
    for index, path in enumerate(paths):
        size += len(path) + 1
        if size > CHANGED_MAX_CHARS:
            return paths[:index], len(paths) - index
    return paths, 0


@dataclass(frozen=True)
class RecordPlan:
    create: Manifest | None  # the new revision, or None: the code is already recorded
    delete: tuple[str, ...]  # revisions beyond the limit, oldest first


def plan_record(
    existing: list[Revision], code_map: Manifest, content_hash: str, now: str, limit: int
) -> RecordPlan:
    """What recording a deploy of `code_map` (the live code ConfigMap as rendered) does."""
    if any(r.content_hash == content_hash for r in existing):
        return RecordPlan(None, ())
    number = max((r.number for r in existing), default=0) + 1
    newest = existing[0] if existing else None
    data = dict(code_map.get("data") or {})
    meta = code_map["metadata"]
    workflow = meta["labels"]["app.kubernetes.io/name"]
    changed, more = fitting(files_changed(newest.data if newest else None, data))
    manifest: Manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": revision_name(workflow, number),
            "namespace": meta["namespace"],
            "labels": {**meta["labels"], HISTORY_LABEL: "true"},
            "annotations": {
                REVISION_ANNOTATION: str(number),
                DEPLOYED_AT_ANNOTATION: now,
                CONTENT_HASH_ANNOTATION: content_hash,
                CHANGED_ANNOTATION: ",".join(changed),
                **({CHANGED_MORE_ANNOTATION: str(more)} if more else {}),
            },
        },
        "immutable": True,
        "data": data,
    }
    kept = max(limit - 1, 0)
    doomed = tuple(r.name for r in reversed(existing[kept:]))
    return RecordPlan(manifest, doomed)


def unknown_revision(number: int, existing: list[Revision]) -> str:
    there = ", ".join(str(r.number) for r in existing) or "none yet"
    return f"no revision {number} in the deploy history (revisions: {there})"


def live_revision(existing: list[Revision], live_hash: str | None) -> Revision | None:
    return next((r for r in existing if live_hash and r.content_hash == live_hash), None)


def table(existing: list[Revision], live_hash: str | None) -> list[str]:
    """`--history`: one line per revision, newest first, the live one marked."""
    if not existing:
        return ["no deploy history yet: it starts with the next deploy that reaches Ready"]
    rows = [("", "REV", "DEPLOYED", "VERSION", "HASH", "CHANGED")]
    for r in existing:
        changed = r.changed_text
        marker = "*" if live_hash and r.content_hash == live_hash else ""
        rows.append((marker, str(r.number), r.deployed_at, r.version, r.short_hash, changed))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        head = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5]))
        lines.append(f"{head}  {row[5]}".rstrip())
    if any(r.content_hash == live_hash for r in existing):
        lines.append("* live")
    return lines


def diff(before: Revision, after: Revision) -> str:
    """File by file, unified, `before` → `after` (empty when the code is the same)."""
    return unified(before.files(), after.files(), f"r{before.number}", f"r{after.number}")
