"""Which files of a workflow directory are its code, and their ConfigMap keys.

The code is `workflow.yaml` plus every `.ts` file below `nodes/`. Each becomes a
ConfigMap key: its relative path with `/` replaced by `__` (ConfigMap keys may
not contain `/`), mapped back to the path by the code volume's `items`. A file
that cannot be carried (bad key, `__` in its name, not UTF-8, a link leaving
the directory) is an error naming it: a skipped file would be a pod that
cannot find its import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from devloop import names
from devloop.problems import Problem
from devloop.safefiles import Refusal, identity, inside, read_inside
from devloop.secrets import SECRETS_DIR, SECRETS_FILE, secret_identities
from devloop.workflow import WORKFLOW_FILE

NODES_DIR = "nodes"
KEY_SEPARATOR = "__"
SKIPPED_DIRS = {"node_modules"}
# One file may not be larger than the whole ConfigMap may be (render.CODE_LIMIT_BYTES);
# a larger one is refused with its size before it is read.
CODE_FILE_MAX = 900 * 1024


@dataclass(frozen=True)
class CodeFile:
    path: str  # relative, '/'-separated: "nodes/lib/util.ts"
    text: str

    @property
    def key(self) -> str:
        return path_to_key(self.path)

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def stored_size(self) -> int:
        """What the API server counts toward the object's 1 MiB: key and value."""
        return len(self.key) + self.size


def path_to_key(path: str) -> str:
    return path.replace("/", KEY_SEPARATOR)


def key_to_path(key: str) -> str:
    return key.replace(KEY_SEPARATOR, "/")


def unmappable_reason(path: str) -> str | None:
    """Why a path cannot round-trip through a flattened key, or None.

    `nodes/a__b.ts` and `nodes/lib_/x.ts` both give keys that map back to another
    path (`nodes/a/b.ts`, `nodes/lib/_x.ts`); the items would mount the wrong file.
    """
    if key_to_path(path_to_key(path)) == path:
        return None
    if any(KEY_SEPARATOR in part for part in PurePosixPath(path).parts):
        return (
            f"file and directory names must not contain '{KEY_SEPARATOR}': it separates "
            "path parts in ConfigMap keys"
        )
    return (
        f"folder names must not end in '_': next to the '{KEY_SEPARATOR}' that stands for "
        "'/' in ConfigMap keys, the path could not be told apart from another"
    )


@dataclass(frozen=True)
class Listing:
    """What one walk of nodes/ finds: the code files, and the linked folders among the
    folders that would be deployed (os.walk does not enter links, so they are reported
    rather than silently not deployed)."""

    paths: list[str]  # workflow.yaml first, then nodes/**/*.ts sorted
    linked_dirs: list[str]
    unlisted: list[tuple[str, str]] = field(default_factory=list)  # (folder, why not)


def list_code(root: Path) -> Listing:
    """Hidden files and folders (editor locks such as `.#a.ts`, `.git`) and `node_modules`
    are not code, nor is anything that does not end in `.ts`; a linked folder among them
    (pnpm fills node_modules with links) is not a problem either."""
    found: list[str] = []
    linked: list[str] = []
    unlisted: list[tuple[str, str]] = []
    nodes = root / NODES_DIR

    def unreadable(exc: OSError) -> None:
        where = Path(exc.filename or nodes).relative_to(root).as_posix()
        unlisted.append((where, exc.strerror or str(exc)))

    if os.path.isdir(nodes):  # False, never an exception, when root cannot be searched
        for dirpath, dirnames, filenames in os.walk(nodes, onerror=unreadable, followlinks=False):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS
            )
            rel_dir = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
            linked += [
                str(rel_dir / d) for d in dirnames if os.path.islink(os.path.join(dirpath, d))
            ]
            found += [
                str(rel_dir / name)
                for name in filenames
                if not name.startswith(".") and name.endswith(".ts")
            ]
    return Listing([WORKFLOW_FILE, *sorted(found)], sorted(linked), sorted(unlisted))


def read_code_files(
    root: Path, display_root: str, listing: Listing | None = None
) -> tuple[list[CodeFile], list[Problem]]:
    """Read every code file (of `listing`, default: list_code), reporting each one that
    cannot be carried in a ConfigMap. Reads go through safefiles (inside the directory,
    regular files, bounded); a file that is, or leads to, a secrets file is refused."""
    listing = listing or list_code(root)
    files: list[CodeFile] = []
    problems: list[Problem] = []
    top = os.path.realpath(root)
    secret_file = os.path.join(top, SECRETS_FILE)
    secret_dir = os.path.join(top, SECRETS_DIR)
    secret_ids = secret_identities(root)

    def shown(rel: str) -> str:
        return os.path.join(display_root, rel)

    for rel in listing.linked_dirs:
        problems.append(
            Problem(
                shown(rel),
                "is a symbolic link to a directory; link the files or copy the directory instead",
            )
        )
    for rel, why in listing.unlisted:
        problems.append(Problem(shown(rel), f"cannot be listed: {why}; its code is not deployed"))
    for rel in listing.paths:
        full = root / rel
        if rel == WORKFLOW_FILE and not os.access(root, os.X_OK):
            problems.append(Problem(display_root, "cannot be read: Permission denied"))
            continue
        if rel == WORKFLOW_FILE and not os.path.lexists(full):
            problems.append(
                Problem(shown(rel), "not found: a workflow directory needs a workflow.yaml")
            )
            continue
        reason = unmappable_reason(rel)
        if reason:
            problems.append(Problem(shown(rel), reason))
            continue
        key = path_to_key(rel)
        key_errors = names.config_map_key(key)
        if key_errors:
            problems.append(
                Problem(
                    shown(rel), f"cannot be a ConfigMap key ({key!r}): " + "; ".join(key_errors)
                )
            )
            continue
        resolved = os.path.realpath(full)
        if (
            resolved == secret_file
            or inside(resolved, secret_dir)
            or (secret_ids and identity(full) in secret_ids)
        ):
            problems.append(
                Problem(
                    shown(rel),
                    "leads to the workflow's secrets; secrets are never shipped in the "
                    "ConfigMap (they go to the Secret)",
                )
            )
            continue
        data = read_inside(full, top, CODE_FILE_MAX, resolved)
        if isinstance(data, Refusal):
            problems.append(Problem(shown(rel), data.reason))
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            problems.append(
                Problem(
                    shown(rel),
                    f"is not valid UTF-8 (byte 0x{data[exc.start]:02x}"
                    f" at offset {exc.start}); ConfigMap data "
                    "must be UTF-8 text",
                    line,
                )
            )
            continue
        files.append(CodeFile(rel, text))
    return files, problems
