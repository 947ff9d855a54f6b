"""Snapshots of a folder tree and a small real filesystem, for tests that promise "nothing changed"."""
from __future__ import annotations

import contextlib
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (hidden ones too): folders as ``"dir"``, files by SHA-256 of their bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        out[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class SmallFilesystem:
    """A tmpfs of a given size mounted at ``path`` (needs root); ``resize`` grows or shrinks it in place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, size_bytes: int, *, read_only: bool = False) -> None:
        mode = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode},size={size_bytes}", str(self.path)],
                       check=True, capture_output=True)


@contextlib.contextmanager
def small_filesystem(path: Path, size_bytes: int) -> Iterator[SmallFilesystem | None]:
    """Mount a tmpfs of ``size_bytes`` at ``path``; yields None where mounting is not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                              capture_output=True, text=True)
    except FileNotFoundError:      # no mount(8) here
        done = None
    if done is None or done.returncode != 0:
        yield None
        return
    try:
        yield SmallFilesystem(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
