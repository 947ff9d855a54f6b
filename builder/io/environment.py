"""Failures of the machine, not of a clip: a full disk, a read-only or vanished media root, a missing tool.

A media stage that meets one must stop at once with one clear line and record
nothing against the clip it was working on: the clip is fine, and a rerun
after the cause is fixed resumes cleanly. Treating a full disk as "this clip
failed" would instead mark every remaining clip bad, with a misleading reason.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from builder.errors import LlinetError

# errnos that say "this filesystem cannot take the write", whatever is being written.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ESTALE})
PROBE_BYTES = 1 << 20           # a write this big must fit, or the disk counts as full


class EnvironmentFailure(LlinetError):
    """The stage stopped because of the machine (disk, media root, tools); no clip was marked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)   # one positional argument: survives pickling between processes


def environment_reason(exc: BaseException) -> str | None:
    """The machine-level reason of an OS error (``"No space left on device"``), or None for any other error."""
    for item in (exc, exc.__cause__, exc.__context__):
        if isinstance(item, OSError) and item.errno in ENVIRONMENT_ERRNOS:
            return os.strerror(item.errno)
    return None


def stop_message(reason: str, where: str | os.PathLike[str], doing: str) -> str:
    return (f"{reason} ({where}) while {doing}: stopped, and nothing was recorded against the clips; "
            f"fix it and rerun the same command to resume")


@contextlib.contextmanager
def environment_guard(where: str | os.PathLike[str], doing: str) -> Iterator[None]:
    """Turn a machine-level OS error inside the block into :class:`EnvironmentFailure`."""
    try:
        yield
    except OSError as exc:
        reason = environment_reason(exc)
        if reason is None:
            raise
        raise EnvironmentFailure(stop_message(reason, where, doing)) from exc


def root_problem(root: Path) -> str | None:
    """Why the media root cannot be used right now (vanished, not a folder), or None."""
    try:
        if not root.is_dir():
            return "the media root vanished"
    except OSError as exc:
        return f"the media root cannot be read: {exc.strerror or exc}"
    return None


def disk_problem(folder: Path, probe_bytes: int = PROBE_BYTES) -> str | None:
    """Try to write ``probe_bytes`` in ``folder``; the reason it failed for lack of space or a read-only
    filesystem, else None. A real write, not ``statvfs``: root may write into reserved blocks, quotas
    and network filesystems do not show in free-space figures."""
    path = folder / f".space-check.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return environment_reason(exc)
    try:
        block = os.urandom(min(probe_bytes, 1 << 16))   # random: compressing filesystems must store it
        remaining = probe_bytes
        while remaining > 0:
            remaining -= os.write(fd, block[:remaining])
        os.fsync(fd)
    except OSError as exc:
        return environment_reason(exc)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
    return None


def missing_tools(*names: str) -> list[str]:
    """The programs among ``names`` that are not on PATH (or not at the given path)."""
    return [name for name in names if shutil.which(name) is None]
