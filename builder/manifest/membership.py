"""What goes into an export or a release, and where its files are.

Shared by ``export`` (official layout, WebDataset, HF Parquet), ``release`` and
``verify``. A clip is *in the dataset* when every stage that ran says so:

* ``selected`` is true (the final selection after fetch's fill-to-quota);
* ``fetch_status`` is ``ok`` (when the column exists);
* ``trim_status`` / ``frames_status`` are ``ok`` (when the columns exist) and
  ``audio_path`` / ``frame_path`` are set;
* curation (``llinet-build curate``, optional) did not reject it: column
  ``curation`` is ``accepted`` or ``undecided`` (or empty: not curated), not
  ``rejected`` / ``auto_rejected``, and ``curation_outcome`` (when present) is
  ``selected``. Curate also rewrites ``selected`` (its re-cap), so after curate
  ``selected`` is final. Decisions are read case-insensitively and short forms
  (``accept``, ``reject``) are accepted; anything else is an error naming the
  line. Without curate every selected clip that passed the media stages is in.

Media paths in the manifest are relative to the media root; they are checked
(no absolute paths, no ``..``) before any file is opened.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.manifest.ids import validate_clip_id

# curate's vocabulary (builder/curate/stage.py CURATIONS) plus short forms a hand-edited manifest may carry
CURATION_VALUES = {"accepted": "accepted", "accept": "accepted", "rejected": "rejected", "reject": "rejected",
                   "auto_rejected": "auto_rejected", "undecided": "undecided"}
CURATION_REJECTS = ("rejected", "auto_rejected")
STATUS_COLUMNS = ("fetch_status", "trim_status", "frames_status")
CHUNK = 1 << 20


def truthy(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def curation_decision(value: object, line: int, source: str | os.PathLike = "<manifest>") -> str:
    """curate's decision for one ``curation`` cell (``accepted`` ... ``undecided``), ``""`` if not curated."""
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip().lower()
    if not text:
        return ""
    if text in CURATION_VALUES:
        return CURATION_VALUES[text]
    raise InputError(f"unknown curation decision {value!r}: expected one of "
                     f"{sorted(set(CURATION_VALUES.values()))} or empty", file=source, line=line, field="curation")


@dataclass
class DatasetRows:
    """The manifest rows in the dataset, plus why the others are out."""

    rows: pd.DataFrame                       # in-dataset rows, in manifest order
    excluded: Counter                        # reason -> clips
    decisions: pd.Series                     # per manifest row: curate's decision or "" (not curated)
    reasons: pd.Series                       # per manifest row: "" (in) or the first reason it is out


def dataset_rows(manifest: pd.DataFrame, source: str | os.PathLike = "<manifest>") -> DatasetRows:
    """Select the rows that are in the dataset (see the module docstring)."""
    for column in ("clip_id", "class", "split"):
        if column not in manifest.columns:
            raise InputError(f"manifest has no {column!r} column", file=source, line=1, field=column)
    reasons = pd.Series("", index=manifest.index, dtype=object)

    def drop(mask: pd.Series, reason: str | pd.Series) -> None:
        hit = (reasons == "") & mask
        reasons[hit] = reason[hit] if isinstance(reason, pd.Series) else reason

    def drop_status(column: str) -> None:
        status = manifest[column].fillna("").astype(str)
        drop(status != "ok", column.split("_")[0] + " " + status.where(status != "", "not run"))

    # Order = which reason is shown: the root cause first (the video was gone), then the
    # selection decisions (why a clip was never trimmed), then media-stage failures.
    if "fetch_status" in manifest.columns:
        drop_status("fetch_status")
    decisions = pd.Series("", index=manifest.index, dtype=object)
    if "curation" in manifest.columns:
        decisions = pd.Series([curation_decision(v, n + 2, source) for n, v in enumerate(manifest["curation"])],
                              index=manifest.index, dtype=object)
        drop(decisions.isin(CURATION_REJECTS), "curation " + decisions)
    if "curation_outcome" in manifest.columns:
        outcome = manifest["curation_outcome"].fillna("").astype(str)
        drop((outcome != "") & (outcome != "selected"), "curation " + outcome)
    if "selected" in manifest.columns:
        drop(~manifest["selected"].map(truthy).astype(bool), "not selected")
    for column in STATUS_COLUMNS[1:]:
        if column in manifest.columns:
            drop_status(column)
    for column in ("audio_path", "frame_path"):
        if column not in manifest.columns:
            raise InputError(f"manifest has no {column!r} column: run `llinet-build "
                             f"{'trim' if column == 'audio_path' else 'frames'}` first", file=source, line=1,
                             field=column)
        drop(manifest[column].fillna("").astype(str) == "", f"no {column}")
    keep = reasons == ""
    for cid in manifest.loc[keep, "clip_id"]:
        validate_clip_id(cid)
    excluded = Counter(reasons[~keep].tolist())
    return DatasetRows(manifest.loc[keep].copy(), excluded, decisions, reasons)


def media_file(root: Path, rel: object, clip_id: str, column: str, *, must_exist: bool = True) -> Path:
    """``root / rel`` after refusing absolute paths and ``..`` (the manifest is input, not trusted)."""
    text = str(rel)
    path = Path(text)
    if not text or path.is_absolute() or ".." in path.parts:
        raise InputError(f"clip {clip_id}: {column} {text!r} must be a path relative to the media root, "
                         "without '..'", field=column)
    full = root / path
    if must_exist and not full.is_file():
        raise InputError(f"clip {clip_id}: {column} file {full} is missing (the manifest says the stage "
                         "succeeded; rerun it)", field=column)
    return full


def class_order(rows: pd.DataFrame, split: str) -> list[str]:
    """Classes of one split in id order: sorted by name (as the official loader's folder listing)."""
    return sorted(set(rows.loc[rows["split"] == split, "class"].astype(str)))


def clip_order(rows: pd.DataFrame) -> pd.DataFrame:
    """Deterministic clip order: class, then rank within class (when present), then clip id."""
    keys = ["class"] + (["rank"] if "rank" in rows.columns else []) + ["clip_id"]
    out = rows.copy()
    if "rank" in out.columns:
        out["rank"] = pd.to_numeric(out["rank"], errors="coerce").fillna(0).astype(int)
    return out.sort_values(keys, kind="stable")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
