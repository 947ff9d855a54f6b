"""The one manifest schema that flows through every builder stage.

A manifest is a pandas DataFrame with one row per clip. Stages add columns;
none renames or reinterprets one. On disk it is CSV written deterministically
(fixed column order, fixed float format, ``\\n`` line ends) so the same inputs
give byte-identical files on any machine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.io.atomic import atomic_open
from builder.manifest.ids import CLIP_ID_RE, YTID_RE


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # "str", "float", "int", "bool"
    doc: str


# Canonical order; stages may add columns not listed here (written after these, sorted).
COLUMNS: tuple[Column, ...] = (
    Column("clip_id", "str", "<ytid>_<start in ms>; unique key"),
    Column("ytid", "str", "YouTube video ID (11 chars, validated)"),
    Column("start", "float", "segment start in the video, seconds"),
    Column("end", "float", "segment end in the video, seconds"),
    Column("class", "str", "target class name"),
    Column("mid", "str", "AudioSet MID of the target class"),
    Column("split", "str", "train | test | val_seen | val_unseen | test_seen ('' before `split`)"),
    Column("source", "str", "AudioSet list: balanced_train | eval | unbalanced_train | ..."),
    Column("labels", "str", "all positive AudioSet labels of the segment, comma-joined"),
    Column("rank", "int", "0-based rank within the class by stable hash of (clip_id, seed)"),
    Column("selected", "bool", "1 = in the selection, 0 = in the ranked reserve"),
)
COLUMN_BY_NAME = {c.name: c for c in COLUMNS}
REQUIRED = ("clip_id", "ytid", "start", "end", "class", "mid", "split", "source", "labels")
TIME_FORMAT = "%.3f"


def canonical_order(columns: list[str]) -> list[str]:
    known = [c.name for c in COLUMNS if c.name in columns]
    extra = sorted(c for c in columns if c not in COLUMN_BY_NAME)
    return known + extra


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=_pandas_dtype(c.dtype)) for c in COLUMNS})


def _pandas_dtype(kind: str) -> str:
    return {"str": "object", "float": "float64", "int": "int64", "bool": "bool"}[kind]


def write_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` atomically as canonical CSV; returns the path."""
    out = df[canonical_order(list(df.columns))].copy()
    for col in out.columns:
        spec = COLUMN_BY_NAME.get(col)
        if spec is not None and spec.dtype == "bool":
            out[col] = out[col].astype(bool).astype(int)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        out.to_csv(handle, index=False, float_format=TIME_FORMAT, lineterminator="\n")
    return Path(path)


def read_manifest(path: str | os.PathLike, *, required: tuple[str, ...] = REQUIRED) -> pd.DataFrame:
    """Read and validate a manifest CSV; errors name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("manifest not found", file=path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV manifest: {exc}", file=path) from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {list(df.columns)}", file=path, line=1)
    return validate_manifest(df, path)


def validate_manifest(df: pd.DataFrame, path: str | os.PathLike = "<manifest>") -> pd.DataFrame:
    """Convert string columns to schema types, checking every value.

    Line numbers are 1-based file lines (the header is line 1).
    """
    df = df.copy()
    for col in df.columns:
        spec = COLUMN_BY_NAME.get(col)
        if spec is None or spec.dtype == "str":
            continue
        converted = []
        for i, raw in enumerate(df[col].tolist()):
            converted.append(_convert(raw, spec, path, i + 2))
        df[col] = pd.Series(converted, index=df.index, dtype=_pandas_dtype(spec.dtype))
    if "ytid" in df.columns:
        for i, ytid in enumerate(df["ytid"].tolist()):
            if not isinstance(ytid, str) or not YTID_RE.fullmatch(ytid):
                raise InputError(f"invalid YouTube ID {ytid!r} (expected 11 chars of [A-Za-z0-9_-])",
                                 file=path, line=i + 2, field="ytid")
    if "clip_id" in df.columns:
        seen: dict[str, int] = {}
        for i, cid in enumerate(df["clip_id"].tolist()):
            if not isinstance(cid, str) or not CLIP_ID_RE.fullmatch(cid):
                raise InputError(f"invalid clip ID {cid!r} (expected <ytid>_<start ms>)",
                                 file=path, line=i + 2, field="clip_id")
            if cid in seen:
                raise InputError(f"duplicate clip ID {cid!r} (first on line {seen[cid]})",
                                 file=path, line=i + 2, field="clip_id")
            seen[cid] = i + 2
    if {"start", "end"} <= set(df.columns):
        bad = (df["end"] <= df["start"]).to_numpy().nonzero()[0]  # row positions, whatever the index
        if len(bad):
            i = int(bad[0])
            raise InputError("end must be greater than start", file=path, line=i + 2, field="end")
    return df


def _convert(raw: object, spec: Column, path: str | os.PathLike, line: int) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        if spec.dtype == "float":
            return float(raw)
        if spec.dtype == "int":
            return int(raw)
        if spec.dtype == "bool":
            if raw in ("1", "True", "true"):
                return True
            if raw in ("0", "False", "false"):
                return False
            raise ValueError(raw)
    except ValueError:
        raise InputError(f"expected {spec.dtype}, got {raw!r}", file=path, line=line, field=spec.name) from None
    return raw


# --------------------------------------------------------------------------- manifest folders
# A manifest folder holds the selection (clips.csv) and, beside it, the ranked
# reserve (reserve.csv) that later stages draw replacements from. In memory
# they are one DataFrame told apart by the `selected` column.
SELECTION_FILE = "clips.csv"
RESERVE_FILE = "reserve.csv"


def read_manifest_dir(folder: str | os.PathLike) -> pd.DataFrame:
    folder = Path(folder)
    parts = [read_manifest(folder / SELECTION_FILE)]
    if (folder / RESERVE_FILE).is_file():
        parts.append(read_manifest(folder / RESERVE_FILE))
    df = pd.concat(parts, ignore_index=True)
    if "selected" not in df.columns:
        raise InputError("missing column 'selected'", file=folder / SELECTION_FILE, line=1)
    dupes = df["clip_id"][df["clip_id"].duplicated()]
    if len(dupes):
        raise InputError(f"clip {dupes.iloc[0]!r} is in both {SELECTION_FILE} and {RESERVE_FILE}", file=folder)
    return df


def write_manifest_dir(df: pd.DataFrame, folder: str | os.PathLike) -> tuple[Path, Path]:
    folder = Path(folder)
    selected = df["selected"].astype(bool)
    return (write_manifest(df[selected], folder / SELECTION_FILE),
            write_manifest(df[~selected], folder / RESERVE_FILE))
