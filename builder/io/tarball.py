"""Deterministic tar writing and safe tar extraction.

Same members in, same bytes out: members are added in the order given (callers
sort them), as USTAR entries with a fixed mtime, uid/gid 0, empty user/group
names and mode 0644 -- nothing from the build machine leaks into the archive.
Extraction goes through ``tarfile``'s ``"data"`` filter (no absolute paths,
no ``..``, no links out of the destination, no device files, no setuid bits).
"""
from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from builder.errors import InputError
from builder.io.atomic import atomic_open

FILE_MODE = 0o644


def default_mtime() -> int:
    """``SOURCE_DATE_EPOCH`` when set (reproducible-builds convention), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else 0


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info


def write_tar(dest: str | os.PathLike, members: Iterable[tuple[str, bytes | Path]], mtime: int = 0) -> Path:
    """Write ``members`` ((name in archive, bytes or a file path), in order) to ``dest`` atomically."""
    dest = Path(dest)
    with atomic_open(dest, "wb") as handle:
        # GNU format only for names over USTAR's limits; the fields are fixed either way.
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as archive:
            for name, payload in members:
                if isinstance(payload, (bytes, bytearray)):
                    archive.addfile(_info(name, len(payload), mtime), io.BytesIO(payload))
                else:
                    size = Path(payload).stat().st_size
                    with open(payload, "rb") as reader:
                        archive.addfile(_info(name, size, mtime), reader)
    return dest


def safe_extract(archive_path: str | os.PathLike, dest: str | os.PathLike) -> list[str]:
    """Extract with the ``"data"`` filter; returns the member names. Refuses unsafe archives."""
    archive_path, dest = Path(archive_path), Path(dest)
    if not archive_path.is_file():
        raise InputError("archive not found", file=archive_path)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive_path, mode="r:*") as archive:
            names = archive.getnames()
            archive.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise InputError(f"unsafe archive member refused: {exc}", file=archive_path) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InputError(f"unreadable tar archive: {exc}", file=archive_path) from None
    return names
