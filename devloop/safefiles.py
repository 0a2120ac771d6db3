"""Reading the user's files without being trapped by them.

Every file pdwatch reads from a workflow directory is opened through `read_inside`:
- it must resolve to a place inside the directory (a link to `/etc/passwd` or
  `~/.aws/credentials` in a workflow someone else wrote would otherwise be shipped to a
  cluster where that workflow's code can read it);
- it must be a regular file, checked on the opened descriptor (opened non-blocking, so a
  FIFO never blocks the read, and a device such as /dev/zero is never read);
- at most `limit` bytes are read: a larger file is refused with its size, not loaded.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


def inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top + os.sep)


@dataclass(frozen=True)
class Refusal:
    """Why a file was not read, worded to follow its name."""

    reason: str


def describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_inside(
    path: Path, top: str | None, limit: int, resolved: str | None = None
) -> bytes | Refusal:
    """The bytes of `path`, or why they were not read. `top` is the realpath of the
    workflow directory (None: the file may lead anywhere); `resolved`, the path's realpath
    when the caller has it (one realpath a file: they cost a stat per component)."""
    resolved = resolved or os.path.realpath(path)
    if top is not None and not inside(resolved, top):
        return Refusal(f"is a link to {resolved}, outside the workflow directory")
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return Refusal("does not exist" if not os.path.islink(path) else "is a broken link")
    except OSError as exc:
        return Refusal(f"cannot be read: {exc.strerror}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Refusal(f"is {describe_mode(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            return Refusal(f"is {info.st_size:,} bytes, more than the {limit:,} bytes allowed")
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        return Refusal(f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while being read
        return Refusal(f"is more than the {limit:,} bytes allowed")
    return data


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what the path leads to, to tell a hard link to a file."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino
