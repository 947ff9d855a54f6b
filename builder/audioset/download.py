"""Fetch the AudioSet metadata files: resumable HTTP download or a verified local copy.

Guarantees: a file appears at its final path only complete and, where a sha256
is pinned, verified (atomic rename of ``<name>.part``); an interrupted download
is resumed with an HTTP Range request on the next run; a checksum mismatch
leaves nothing behind. ``metadata_manifest.json`` in the destination records
where each file came from, its size, sha256 and when it was fetched.
"""
from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from builder.errors import InputError, LlinetError
from builder.io.atomic import atomic_write_json
from builder.io.http import ChecksumError, DownloadError, fetch, sha256_file

logger = logging.getLogger(__name__)

__all__ = ["ChecksumError", "DownloadError", "FileRecord", "copy_metadata", "download_metadata",
           "read_sha256sums", "METADATA_FILES", "PINNED_SHA256"]

GOOGLE_CSV_BASE_URL = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv"
# The ontology repository's v1 HEAD, pinned so the URL cannot drift from the pinned sha256.
ONTOLOGY_URL = ("https://raw.githubusercontent.com/audioset/ontology/"
                "d417d32bf59c711abb5910fd2f76a0eb44697991/ontology.json")

ONTOLOGY = "ontology.json"
CLASS_INDEX = "class_labels_indices.csv"
BALANCED = "balanced_train_segments.csv"
EVAL = "eval_segments.csv"
UNBALANCED = "unbalanced_train_segments.csv"
METADATA_FILES = (ONTOLOGY, CLASS_INDEX, BALANCED, EVAL, UNBALANCED)
# Third-party copies of the unbalanced list (e.g. leanderme/as_dl) split it in 41 parts.
UNBALANCED_PARTS_DIR = "unbalanced_partial_csvs"
MANIFEST_NAME = "metadata_manifest.json"

# Provenance: the hashes of the files as committed (git blobs) in audioset/ontology
# (commit d417d32bf59c711abb5910fd2f76a0eb44697991) and in leanderme/as_dl
# (commit a55b0b6ef8b3fe84e642a9e166f62c8fff2f0f2c),
# byte-identical to Google's files. No pin is known for Google's single
# unbalanced_train_segments.csv: its hash is recorded, not checked.
PINNED_SHA256 = {
    ONTOLOGY: "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d",
    CLASS_INDEX: "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429",
    BALANCED: "3b83e5ff9ed72cfda37d4e36ce08250e107c1ea70f109f6ab6668ac200db5e94",
    EVAL: "f7055f53935f70e74e39494a5c8c4c78f1700fce275028bd36e31186f33d45db",
}


@dataclass
class FileRecord:
    """One file now in the destination and how it got there."""

    path: str                 # relative to the destination folder
    source: str               # URL or absolute local path
    size: int
    sha256: str
    verified: str             # "pinned sha256", "source SHA256SUMS" or "not verified (no known hash)"
    action: str               # "downloaded", "copied", "linked" or "already present"
    retrieved: str            # UTC ISO time the bytes were fetched


def default_urls(base_url: str | None = None) -> dict[str, str]:
    """Source URL of each metadata file; ``base_url`` serves all five (a mirror or a test server)."""
    if base_url is None:
        urls = {name: f"{GOOGLE_CSV_BASE_URL}/{name}" for name in METADATA_FILES if name != ONTOLOGY}
        urls[ONTOLOGY] = ONTOLOGY_URL
        return urls
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise InputError(f"--base-url must be an http:// or https:// URL, got {base_url!r}")
    return {name: f"{base_url.rstrip('/')}/{name}" for name in METADATA_FILES}


def download_metadata(dest: str | os.PathLike, *, names: Sequence[str] = METADATA_FILES,
                      base_url: str | None = None, retries: int = 4, backoff_s: float = 1.0,
                      timeout_s: float = 60.0, progress: bool = True,
                      log: Callable[[str], None] | None = None) -> list[FileRecord]:
    """Download ``names`` into ``dest`` (resumable, verified); update the manifest after each file."""
    dest_dir, names = Path(dest), _checked_names(names)
    urls = default_urls(base_url)
    records: list[FileRecord] = []
    with _locked(dest_dir):
        _read_manifest(dest_dir)  # a damaged record is reported before any work
        for name in names:
            result = fetch(urls[name], dest_dir / name, expected_sha256=PINNED_SHA256.get(name),
                           retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                           progress=progress, log=log)
            record = FileRecord(name, urls[name], result.size, result.sha256,
                                _verified_label(PINNED_SHA256.get(name), None),
                                "already present" if result.already_present else "downloaded",
                                _retrieved_before(dest_dir, name) if result.already_present else _now())
            if log is not None and not result.already_present:
                log(f"{name}: {record.action} ({record.size:,} bytes, {record.verified})")
            records.append(record)
            _update_manifest(dest_dir, [record])
    return records


def copy_metadata(dest: str | os.PathLike, source_dir: str | os.PathLike, *,
                  names: Sequence[str] = METADATA_FILES, link: bool = False,
                  log: Callable[[str], None] | None = None) -> list[FileRecord]:
    """Copy (or hard-link) ``names`` from a local copy of the metadata, verifying hashes.

    The unbalanced list may be one file or the ``unbalanced_partial_csvs/*.csv``
    parts; the layout found is kept. Files without an embedded pin are checked
    against a ``SHA256SUMS`` file in ``source_dir`` when it lists them.
    """
    dest_dir, source, names = Path(dest), Path(source_dir), _checked_names(names)
    if not source.is_dir():
        raise InputError("--from: not a folder", file=source)
    sums = read_sha256sums(source / "SHA256SUMS") if (source / "SHA256SUMS").is_file() else {}
    records: list[FileRecord] = []
    with _locked(dest_dir):
        _read_manifest(dest_dir)  # a damaged record is reported before any work
        for name in names:
            for relpath in _local_layout(source, name):
                pinned = PINNED_SHA256.get(name) if relpath == name else None
                record = _copy_verified(source / relpath, dest_dir, relpath,
                                        expected=pinned or sums.get(relpath),
                                        verified=_verified_label(pinned, sums.get(relpath)), link=link)
                if log is not None and record.action != "already present":
                    log(f"{relpath}: {record.action} ({record.size:,} bytes, {record.verified})")
                records.append(record)
                _update_manifest(dest_dir, [record])
    return records


def read_sha256sums(path: Path) -> dict[str, str]:
    """Parse ``sha256sum`` output (``<hex>  <path>`` or ``<hex> *<path>``) into {path: hex}."""
    sums: dict[str, str] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, relpath = line.partition(" ")
        relpath = relpath.lstrip(" *")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest) or not relpath:
            raise InputError("expected '<64 hex digits>  <path>'", file=path, line=line_number)
        sums[relpath] = digest.lower()
    return sums


def _checked_names(names: Iterable[str]) -> list[str]:
    unknown = [name for name in names if name not in METADATA_FILES]
    if unknown:
        raise InputError(f"unknown metadata file(s) {unknown}; expected some of {list(METADATA_FILES)}")
    return list(dict.fromkeys(names))  # keep order, drop repeats


def _local_layout(source: Path, name: str) -> list[str]:
    """Relative paths holding ``name`` in a local copy (the unbalanced list may be in parts)."""
    if (source / name).is_file():
        return [name]
    if name == UNBALANCED:
        parts = sorted(p.name for p in (source / UNBALANCED_PARTS_DIR).glob("*.csv")
                       if p.is_file()) if (source / UNBALANCED_PARTS_DIR).is_dir() else []
        if parts:
            return [f"{UNBALANCED_PARTS_DIR}/{part}" for part in parts]
        raise InputError(f"missing: neither {name} nor {UNBALANCED_PARTS_DIR}/*.csv is there "
                         "(use --no-unbalanced to skip the unbalanced list)", file=source)
    raise InputError(f"missing AudioSet metadata file {name}", file=source / name)


def _verified_label(pinned: str | None, listed: str | None) -> str:
    if pinned:
        return "pinned sha256"
    return "source SHA256SUMS" if listed else "not verified (no known hash)"


def _copy_verified(source: Path, dest_dir: Path, relpath: str, *, expected: str | None,
                   verified: str, link: bool) -> FileRecord:
    source_text, target = str(source.resolve()), dest_dir / relpath
    if not source.is_file():
        raise InputError("missing AudioSet metadata file", file=source)
    if target.is_file():
        actual = sha256_file(target)
        if actual == (expected or sha256_file(source)):
            return FileRecord(relpath, source_text, target.stat().st_size, actual, verified,
                              "already present", _retrieved_before(dest_dir, relpath))
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    action = "copied"
    try:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        if link:
            try:
                os.link(source, part)
                action = "linked"
            except OSError:  # other filesystem, or not allowed to link (fs.protected_hardlinks)
                pass
        if action == "copied":
            shutil.copyfile(source, part)
        actual = sha256_file(part)  # hash what will be kept, not what was read earlier
        if expected is not None and actual != expected:
            raise ChecksumError(relpath, expected, actual, source_text)
        if action == "copied":
            with open(part, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(part, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
    return FileRecord(relpath, source_text, target.stat().st_size, actual, verified, action, _now())


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _read_manifest(dest_dir: Path) -> dict:
    path = dest_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc}); delete it to start a fresh record", file=path) from exc
    return manifest if isinstance(manifest, dict) else {}


def _retrieved_before(dest_dir: Path, relpath: str) -> str:
    """When an already present file was fetched, as recorded before (now if unrecorded)."""
    files = _read_manifest(dest_dir).get("files")
    entry = files.get(relpath) if isinstance(files, dict) else None
    return str(entry.get("retrieved", _now())) if isinstance(entry, dict) else _now()


def _update_manifest(dest_dir: Path, records: list[FileRecord]) -> None:
    manifest = _read_manifest(dest_dir)
    files = manifest.get("files", {}) if isinstance(manifest.get("files"), dict) else {}
    for record in records:
        entry = asdict(record)
        del entry["path"]
        files[record.path] = entry
    # Drop entries whose file has gone (e.g. removed by hand) so the record stays true.
    files = {path: entry for path, entry in files.items() if (dest_dir / path).is_file()}
    atomic_write_json(dest_dir / MANIFEST_NAME, {
        "description": "AudioSet metadata fetched by llinet-build metadata",
        "updated": _now(),
        "files": dict(sorted(files.items())),
    })


@contextlib.contextmanager
def _locked(dest_dir: Path) -> Iterator[None]:
    """One writer per destination: two runs would fight over the same .part files."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    with open(dest_dir / ".metadata.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LlinetError(f"{dest_dir}: another llinet-build metadata run is writing here") from None
        yield


def stderr_log(message: str) -> None:
    """A ``log`` callable for the functions above: an info message of this module's logger."""
    logger.info(message)
