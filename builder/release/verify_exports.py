"""What `verify` was given, and each released clip's files in it.

:func:`open_layout` recognises the folder:

* ``llinet-export`` -- the official layout (``export_index.csv`` + ``traindata/``);
* ``webdataset-export`` -- tar shards listed in ``shards.json``;
* ``hf-export`` -- Parquet files under ``data/`` with a dataset card;
* ``media-root`` / ``media-root+manifest`` -- a media root (``audio/``,
  ``frames/`` ...; its ``manifest.csv`` paths are used when present, else the
  release's file names), e.g. an extracted ``media-X.Y.Z.tar``;

and refuses anything else. A :class:`Layout` yields, clip by clip, the
:class:`Item` s to compare with the release (a media file, a mask, the labels
an export stored), reading tar shards and Parquet files in one streaming
pass. Exports that recorded their files' SHA-256 (``export_report.json``,
``shards.json``) are checked file by file first; a mismatch, an unlisted data
file or a clip the release does not have is a finding of the export itself.
Splits a layout cannot hold (the official layout has only train and test) are
counted as such, never as missing.
"""
from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from builder.errors import InputError
from builder.manifest.media_root import AUDIO_DIR, FRAMES_DIR, MediaRoot
from builder.manifest.membership import media_file, sha256_file

EXPORT_REPORT = "export_report.json"     # builder.export.stage.REPORT_FILE (verify must not import the writers)
SHARD_LIST = "shards.json"               # builder.export.webdataset.SHARD_LIST
OFFICIAL_SPLITS = ("train", "test")
# (item role, the release's column, the rebuild manifest's column) of a media root's files
MEDIA_ROOT_FILES = (("audio", "audio_file", "audio_path"), ("frame", "frame_file", "frame_path"),
                    ("frame_full", "frame_full_file", "frame_full_path"))


@dataclass
class Item:
    """One thing to compare with the release: ``source`` is a file, bytes, a dict of labels, or None (missing)."""

    role: str                             # audio | frame | frame_full | mask | labels
    name: str                             # where it is, for the report
    source: Path | bytes | dict[str, Any] | None


@dataclass
class Layout:
    kind: str
    data: Path
    expected: list[str]                                   # released clips this layout can hold
    not_in_layout: dict[str, int] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)   # about the export itself
    notes: list[str] = field(default_factory=list)
    _items: Any = None                                    # callable -> iterator of (clip_id, [Item])

    def items(self) -> Iterator[tuple[str, list[Item]]]:
        return self._items()


def _export_format(data: Path) -> str | None:
    report = data / EXPORT_REPORT
    if not report.is_file():
        return None
    try:
        value = json.loads(report.read_text(encoding="utf-8")).get("format")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError("unreadable export report", file=report) from None
    return str(value) if value else None


def kind_of(data: Path) -> str:
    """The layout name of ``data``; :class:`InputError` for a folder that is none of them."""
    from builder.export.official import DATA_DIR, INDEX_FILE

    fmt = _export_format(data)
    if fmt == "llinet" or (data / INDEX_FILE).is_file() and (data / DATA_DIR).is_dir():
        return "llinet-export"
    if fmt == "webdataset" or (data / SHARD_LIST).is_file():
        return "webdataset-export"
    if fmt == "hf" or any((data / "data").glob("*.parquet")):
        return "hf-export"
    if MediaRoot(data).manifest.is_file():
        return "media-root+manifest"
    if (data / AUDIO_DIR).is_dir() or (data / FRAMES_DIR).is_dir():
        return "media-root"
    raise InputError("not something verify can check: expected a media root (manifest.csv, audio/, frames/), "
                     "an official-layout export (export_index.csv, traindata/), a WebDataset export "
                     "(shards.json) or a Hugging Face export (data/*.parquet)", file=data)


def open_layout(data: Path, released: pd.DataFrame) -> Layout:
    kind = kind_of(data)
    rows = {r["clip_id"]: r for r in released.to_dict("records")}
    if kind == "llinet-export":
        return _official(data, rows)
    if kind == "webdataset-export":
        return _webdataset(data, rows)
    if kind == "hf-export":
        return _hf(data, rows)
    return _media_root(data, rows, kind)


# --------------------------------------------------------------------------- media root
def _media_root(data: Path, rows: dict[str, dict], kind: str) -> Layout:
    own: dict[str, dict] = {}
    if kind == "media-root+manifest":
        table = pd.read_csv(MediaRoot(data).manifest, dtype=str, keep_default_na=False)
        if {"clip_id", "audio_path", "frame_path"} <= set(table.columns):
            own = {r["clip_id"]: r for r in table.to_dict("records") if r["audio_path"] and r["frame_path"]}
    if not own:
        kind = "media-root"

    def items() -> Iterator[tuple[str, list[Item]]]:
        for clip_id, row in rows.items():
            mine = own.get(clip_id, {})
            out = []
            for role, column, own_column in MEDIA_ROOT_FILES:
                rel = mine.get(own_column) or row.get(column, "")
                if rel:
                    path = media_file(data, rel, clip_id, own_column, must_exist=False)
                    out.append(Item(role, str(rel), path if path.is_file() else None))
            yield clip_id, out

    return Layout(kind, data, list(rows), _items=items)


# --------------------------------------------------------------------------- export checksums
def check_listed_files(data: Path, listed: dict[str, dict[str, Any]], pattern: str, layout: Layout) -> None:
    """Each listed file against its recorded size and SHA-256; data files matching ``pattern`` that are not listed."""
    for rel, record in sorted(listed.items()):
        path = data / rel
        if not path.is_file():
            layout.findings.append({"file": rel, "field": "file", "expected": "present", "actual": "missing",
                                    "message": f"{rel}: listed by the export but missing"})
            continue
        size = path.stat().st_size
        if size != record.get("bytes") or sha256_file(path) != record.get("sha256"):
            layout.findings.append({"file": rel, "field": "sha256", "expected": record.get("sha256"),
                                    "actual": sha256_file(path),
                                    "message": f"{rel}: bytes differ from the export's record "
                                               f"({size} bytes, {record.get('bytes')} recorded)"})
    for path in sorted(data.glob(pattern)):
        rel = path.relative_to(data).as_posix()
        if path.is_file() and rel not in listed:
            layout.findings.append({"file": rel, "field": "file", "expected": "not present", "actual": "present",
                                    "message": f"{rel}: a data file the export does not list"})


def _recorded_checksums(data: Path, layout: Layout) -> dict[str, dict[str, Any]]:
    report = data / EXPORT_REPORT
    try:
        listed = json.loads(report.read_text(encoding="utf-8")).get("checksums") if report.is_file() else None
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise InputError("unreadable export report", file=report) from None
    if not listed:
        layout.notes.append(f"the export records no checksums ({EXPORT_REPORT}): only the clips' content is checked")
        return {}
    return listed


def _unexpected(layout: Layout, clip_id: str, where: str, rows: dict[str, dict]) -> bool:
    if clip_id in rows:
        return False
    layout.findings.append({"clip_id": clip_id, "file": where, "field": "clip_id", "expected": "a released clip",
                            "actual": clip_id, "message": f"{where}: clip {clip_id} is not released in this release"})
    return True


# --------------------------------------------------------------------------- official layout
def _official(data: Path, rows: dict[str, dict]) -> Layout:
    from builder.export.official import DATA_DIR, INDEX_FILE

    held = [c for c, r in rows.items() if r["split"] in OFFICIAL_SPLITS]
    layout = Layout("llinet-export", data, held)
    for row in rows.values():
        if row["split"] not in OFFICIAL_SPLITS:
            layout.not_in_layout[row["split"]] = layout.not_in_layout.get(row["split"], 0) + 1
    check_listed_files(data, _recorded_checksums(data, layout), f"{DATA_DIR}/**/*", layout)
    if not (data / INDEX_FILE).is_file():
        raise InputError("official-layout export without its index", file=data / INDEX_FILE)
    table = pd.read_csv(data / INDEX_FILE, dtype=str, keep_default_na=False)
    index = {}
    for row in table.to_dict("records"):
        if not _unexpected(layout, row["clip_id"], INDEX_FILE, rows):
            index[row["clip_id"]] = row
    base = data / DATA_DIR

    def file_item(role: str, rel: str, clip_id: str, column: str) -> Item:
        path = media_file(base, rel, clip_id, column, must_exist=False)
        return Item(role, f"{DATA_DIR}/{rel}", path if path.is_file() else None)

    def items() -> Iterator[tuple[str, list[Item]]]:
        for clip_id in held:
            row, entry = rows[clip_id], index.get(clip_id)
            if entry is None:
                yield clip_id, [Item("audio", INDEX_FILE, None), Item("frame", INDEX_FILE, None)]
                continue
            out = [Item("labels", INDEX_FILE, {"class": entry.get("class"), "split": entry.get("split")})]
            if entry.get("audio"):
                out += [file_item("audio", entry["audio"], clip_id, "audio"),
                        file_item("frame", entry["image"], clip_id, "image")]
            if entry.get("segment") or row.get("has_mask") == "1" and row["split"] == "test":
                out.append(file_item("mask", entry["segment"], clip_id, "segment") if entry.get("segment")
                           else Item("mask", f"{DATA_DIR}/test/.../segment", None))
            if entry.get("audio_without_seg"):
                full = "frame_full" if row.get("frame_full_file") else "frame"
                out += [file_item("audio", entry["audio_without_seg"], clip_id, "audio_without_seg"),
                        file_item(full, entry["image_without_seg"], clip_id, "image_without_seg")]
            yield clip_id, out

    layout._items = items
    return layout


# --------------------------------------------------------------------------- WebDataset
_MEMBER_ROLES = {"wav": "audio", "jpg": "frame", "full.jpg": "frame_full", "seg.png": "mask"}


def _webdataset(data: Path, rows: dict[str, dict]) -> Layout:
    layout = Layout("webdataset-export", data, list(rows))
    listing_path = data / SHARD_LIST
    if not listing_path.is_file():
        raise InputError("WebDataset export without its shard list", file=listing_path)
    listing = json.loads(listing_path.read_text(encoding="utf-8"))
    shards = listing.get("shards", [])
    check_listed_files(data, {s["path"]: {"sha256": s.get("sha256"), "bytes": s.get("bytes")} for s in shards},
                       "**/*.tar", layout)
    names = listing.get("class_names") or []

    def labels(key: str, parts: dict[str, bytes], split: str) -> dict[str, Any]:
        out: dict[str, Any] = {"split": split}
        if "json" in parts:
            try:
                meta = json.loads(parts["json"])
                out.update({"class": meta.get("class"), "json_split": meta.get("split"),
                            "json_clip_id": meta.get("clip_id")})
            except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                out["json"] = "unreadable"
        if "cls" in parts:
            try:
                index = int(parts["cls"])
                out["cls"] = names[index] if 0 <= index < len(names) else f"index {index}"
            except ValueError:
                out["cls"] = "unreadable"
        return out

    def items() -> Iterator[tuple[str, list[Item]]]:
        for shard in shards:
            path = data / shard["path"]
            if not path.is_file():
                continue
            for key, parts in _tar_samples(path):
                where = f"{shard['path']}:{key}"
                if _unexpected(layout, key, where, rows):
                    continue
                out = [Item("labels", where, labels(key, parts, str(shard.get("split"))))]
                out += [Item(role, f"{where}.{ext}", parts.get(ext)) for ext, role in _MEMBER_ROLES.items()
                        if ext in parts or role in ("audio", "frame")
                        or (role == "mask" and rows[key].get("has_mask") == "1")
                        or (role == "frame_full" and rows[key].get("frame_full_file"))]
                yield key, out

    layout._items = items
    return layout


def _tar_samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per run of consecutive members sharing a key, as WebDataset groups them."""
    key, parts = None, {}
    try:
        with tarfile.open(path, mode="r|") as archive:            # stream: one pass, one sample in memory
            for member in archive:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                stem, _, ext = name.partition(".")
                if stem != key and key is not None:
                    yield key, parts
                    parts = {}
                key = stem
                handle = archive.extractfile(member)
                parts[ext] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"unreadable tar shard: {exc}", file=path) from None
    if key is not None:
        yield key, parts


# --------------------------------------------------------------------------- Hugging Face Parquet
def _hf(data: Path, rows: dict[str, dict]) -> Layout:
    import pyarrow.parquet as pq

    layout = Layout("hf-export", data, list(rows))
    check_listed_files(data, _recorded_checksums(data, layout), "data/*.parquet", layout)
    files = sorted((data / "data").glob("*.parquet"))

    def items() -> Iterator[tuple[str, list[Item]]]:
        for path in files:
            rel = path.relative_to(data).as_posix()
            try:
                parquet = pq.ParquetFile(path)
                names = _class_names(parquet.schema_arrow.metadata or {})
                for batch in parquet.iter_batches(batch_size=64):
                    for record in batch.to_pylist():
                        clip_id = str(record.get("clip_id"))
                        where = f"{rel}:{clip_id}"
                        if _unexpected(layout, clip_id, where, rows):
                            continue
                        label = record.get("class")
                        if isinstance(label, int) and names:
                            label = names[label] if 0 <= label < len(names) else f"index {label}"
                        out = [Item("labels", where, {"class": label, "split": record.get("split")})]
                        for column, role in (("audio", "audio"), ("image", "frame"), ("image_full", "frame_full"),
                                             ("mask", "mask")):
                            cell = record.get(column)
                            content = cell.get("bytes") if isinstance(cell, dict) else None
                            if content is not None or role in ("audio", "frame") or (
                                    role == "mask" and rows[clip_id].get("has_mask") == "1") or (
                                    role == "frame_full" and rows[clip_id].get("frame_full_file")):
                                out.append(Item(role, f"{where}/{column}", content))
                        yield clip_id, out
            except (OSError, ValueError) as exc:   # pyarrow raises ArrowInvalid (a ValueError) on a bad file
                raise InputError(f"unreadable Parquet file: {exc}", file=path) from None

    layout._items = items
    return layout


def _class_names(metadata: dict[bytes, bytes]) -> list[str]:
    try:
        features = json.loads(metadata.get(b"huggingface", b"{}"))["info"]["features"]
        return list(features["class"].get("names") or [])
    except (KeyError, TypeError, json.JSONDecodeError, AttributeError):
        return []
