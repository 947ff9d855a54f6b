"""The release's ID manifest (``clips.csv``): one row per clip considered, with its files' hashes and formats.

AudioSet-style columns first (``YTID, start_seconds, end_seconds,
positive_labels``), then the clip's class, split, window offset and frame
time, whether it is released and why not, curate's decision, availability at
build time with the time it was checked, and for released clips the built
files' names, SHA-256 and formats (:mod:`builder.release.media_format`):
audio container, codec, sample rate, channel count and sample count; frame
container, size and colour channels; the full frame's size.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from builder.errors import InputError
from builder.export.samples import prepare_samples
from builder.io.atomic import atomic_open
from builder.io.status_log import StatusLog
from builder.manifest.media_root import MediaRoot
from builder.manifest.membership import clip_order, curation_decision, sha256_file, truthy
from builder.release.fingerprint import AudioPrint, FingerprintError, audio_fingerprint, frame_fingerprint
from builder.release.media_format import audio_format, image_format

AVAILABILITY = {"ok": "available", "unavailable": "unavailable", "failed": "failed", "": "not_checked"}
# Released files' formats: ID manifest column -> key of the format record (media_format.*_format).
AUDIO_FORMAT_COLUMNS = {"audio_container": "container", "audio_codec": "codec", "audio_sample_rate": "sample_rate",
                        "audio_channels": "channels", "audio_samples": "samples"}
FRAME_FORMAT_COLUMNS = {"frame_container": "container", "frame_width": "width", "frame_height": "height",
                        "frame_channels": "channels"}
FULL_FORMAT_COLUMNS = {"frame_full_width": "width", "frame_full_height": "height"}
FILE_COLUMNS = ("audio_file", "audio_sha256", "frame_file", "frame_sha256", "frame_full_file", "frame_full_sha256")
ID_COLUMNS = ("YTID", "start_seconds", "end_seconds", "positive_labels", "clip_id", "class", "mid", "split",
              "window_offset", "window_seconds", "frame_time", "released", "exclusion", "curation",
              "curation_reason", "availability", "checked_at", "has_mask", "audio_seconds", *FILE_COLUMNS,
              *AUDIO_FORMAT_COLUMNS, *FRAME_FORMAT_COLUMNS, *FULL_FORMAT_COLUMNS)


def _last_attempts(root: Path) -> dict[str, str]:
    log = StatusLog(MediaRoot(root).status_log("fetch"))
    return {cid: str(rec.get("time", "")) for cid, rec in log.latest().items()}


def _text(row: dict, key: str) -> str:
    value = row.get(key, "")
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _float(row: dict, key: str) -> float:
    try:
        return float(row.get(key, "nan"))
    except (TypeError, ValueError):
        return float("nan")


def _formats(clip_id: str, path: Path, record: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    """The format columns of one built file; a built file we cannot describe is refused, not released."""
    if "error" in record:
        raise InputError(f"clip {clip_id}: {record['error']}", file=path)
    return {column: record.get(key, "") for column, key in columns.items()}


def id_manifest(manifest: pd.DataFrame, root: Path, annotations: Path | None, source: str,
                progress: bool = True) -> tuple[pd.DataFrame, list[str], list[AudioPrint], list[np.ndarray]]:
    """The ID manifest plus (clip ids, audio prints, frame prints) of the released clips."""
    from tqdm import tqdm

    samples, selection = prepare_samples(manifest, root, annotations, source)
    by_id = {s.clip_id: s for s in samples}
    considered = pd.Series(False, index=manifest.index)
    for column in ("selected", "selected_before_fetch", "selected_before_curate"):
        if column in manifest.columns:
            considered |= manifest[column].map(truthy).astype(bool)
    if "fetch_status" in manifest.columns:
        considered |= manifest["fetch_status"].fillna("").astype(str) != ""
    rows = clip_order(manifest.loc[considered].assign(_reason=selection.reasons[considered]))
    attempts = _last_attempts(root)
    lines = {cid: n + 2 for n, cid in enumerate(manifest["clip_id"].tolist())}  # CSV line (header = 1)
    records, ids, audio_prints, frame_prints = [], [], [], []
    for row in tqdm(rows.to_dict("records"), desc="release", unit="clip", disable=not progress,
                    dynamic_ncols=True, file=sys.stderr):
        clip_id = str(row["clip_id"])
        sample = by_id.get(clip_id)
        fetch = _text(row, "fetch_status")
        record: dict[str, Any] = {
            "YTID": row["ytid"], "start_seconds": row["start"], "end_seconds": row["end"],
            "positive_labels": _text(row, "labels"), "clip_id": clip_id, "class": row["class"],
            "mid": _text(row, "mid"), "split": row["split"], "window_offset": _float(row, "window_offset"),
            "window_seconds": _float(row, "window_seconds"), "frame_time": _float(row, "frame_time"),
            "released": int(sample is not None), "exclusion": "" if sample else _text(row, "_reason"),
            "curation": curation_decision(row.get("curation", ""), lines[clip_id], source),
            "curation_reason": _text(row, "curation_reason"),
            "availability": AVAILABILITY.get(fetch, fetch), "checked_at": attempts.get(clip_id, ""),
            "has_mask": int(bool(sample and sample.has_mask)), "audio_seconds": float("nan")}
        record.update({column: "" for column in ID_COLUMNS if column not in record})
        if sample is not None:
            try:
                audio = audio_fingerprint(sample.audio)
                frame = frame_fingerprint(sample.frame)
            except FingerprintError as exc:
                raise InputError(f"clip {clip_id}: {exc}", file=sample.audio) from None
            record.update(audio_seconds=round(audio.seconds, 6), audio_file=str(row["audio_path"]),
                          audio_sha256=sha256_file(sample.audio), frame_file=str(row["frame_path"]),
                          frame_sha256=sha256_file(sample.frame))
            record.update(_formats(clip_id, sample.audio, audio_format(sample.audio), AUDIO_FORMAT_COLUMNS))
            record.update(_formats(clip_id, sample.frame, image_format(sample.frame), FRAME_FORMAT_COLUMNS))
            if sample.frame_full is not None:
                record.update(frame_full_file=str(row["frame_full_path"]),
                              frame_full_sha256=sha256_file(sample.frame_full))
                record.update(_formats(clip_id, sample.frame_full, image_format(sample.frame_full),
                                       FULL_FORMAT_COLUMNS))
            ids.append(clip_id)
            audio_prints.append(audio)
            frame_prints.append(frame)
        records.append(record)
    return pd.DataFrame(records, columns=list(ID_COLUMNS)), ids, audio_prints, frame_prints


def write_id_manifest(ids: pd.DataFrame, path: Path) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        ids.to_csv(handle, index=False, lineterminator="\n")  # shortest exact float repr


def read_id_manifest(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("release has no ID manifest", file=path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    missing = [c for c in ("clip_id", "class", "split", "released") if c not in df.columns]
    if missing:
        raise InputError(f"ID manifest lacks column(s) {missing}", file=path, line=1)
    return df


def numeric_ids(ids: pd.DataFrame) -> pd.DataFrame:
    """The ID manifest with its number columns as numbers (what :mod:`builder.release.stats` reads)."""
    out = ids.copy()
    for column in ("start_seconds", "end_seconds", "window_offset", "window_seconds", "frame_time",
                   "audio_seconds", "released", "has_mask"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
    for column in ("curation", "curation_reason", "exclusion", "availability", "checked_at", "class", "split"):
        out[column] = out[column].fillna("").astype(str)
    return out
