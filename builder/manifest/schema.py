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
from builder.io.environment import environment_guard
from builder.manifest.ids import CLIP_ID_RE, YTID_RE
from builder.manifest.validate import check_segments, check_times, refuse_dropped_rows, refuse_empty


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
        # Every boolean column is written 1/0, like `selected`: one convention for all stages' flags.
        if (spec is not None and spec.dtype == "bool") or pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].astype(bool).astype(int)
    with environment_guard(Path(path).parent, "writing the manifest"):
        with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
            out.to_csv(handle, index=False, float_format=TIME_FORMAT, lineterminator="\n")
    return Path(path)


def read_manifest(path: str | os.PathLike, *, required: tuple[str, ...] = REQUIRED,
                  strict: bool = False) -> pd.DataFrame:
    """Read and validate a manifest CSV; errors name file, line and field.

    ``strict`` adds the media stages' row checks (:func:`builder.manifest.validate.check_segments`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("manifest not found", file=path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        first = required[0] if required else "clip_id"
        raise InputError(f"empty file ({path.stat().st_size} bytes): expected a CSV header line naming the "
                         f"columns {', '.join(required)}", file=path, line=1, field=first) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV manifest: {one_line(exc)}", file=path) from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; found {list(df.columns)}", file=path, line=1,
                         field=missing[0])
    return validate_manifest(df, path, strict=strict)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def validate_manifest(df: pd.DataFrame, path: str | os.PathLike = "<manifest>", *,
                      strict: bool = False) -> pd.DataFrame:
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
        check_times(df["start"].tolist(), df["end"].tolist(), path)   # finite, >= 0, end > start
        if strict and {"clip_id", "ytid"} <= set(df.columns):
            check_segments(df, path)
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


def read_manifest_dir(folder: str | os.PathLike, *, strict: bool = False) -> pd.DataFrame:
    folder = Path(folder)
    parts = [read_manifest(folder / SELECTION_FILE, strict=strict)]
    if (folder / RESERVE_FILE).is_file():
        parts.append(read_manifest(folder / RESERVE_FILE, strict=strict))
    df = pd.concat(parts, ignore_index=True)
    if "selected" not in df.columns:
        raise InputError("missing column 'selected'", file=folder / SELECTION_FILE, line=1)
    dupes = df["clip_id"][df["clip_id"].duplicated()]
    if len(dupes):
        raise InputError(f"clip {dupes.iloc[0]!r} is in both {SELECTION_FILE} and {RESERVE_FILE}", file=folder)
    return df


def refuse_lossy_overwrite(incoming: pd.DataFrame, target: str | os.PathLike, source: str, flag: str,
                           allow_drop: bool = False) -> None:
    """Before a stage writes ``incoming`` over the manifest at ``target``: refuse an input without rows,
    and (unless ``allow_drop``) one that lacks rows of the manifest there -- their columns from later
    stages would be lost with them."""
    refuse_empty(incoming, str(Path(source) / SELECTION_FILE) if Path(source).is_dir() else source)
    if allow_drop or not Path(target).exists():
        return
    try:
        existing = read_manifest(target, required=("clip_id",))
    except InputError as exc:
        raise InputError(f"{exc.detail} (this run would overwrite it: pass {flag} to replace it anyway)",
                         file=exc.file, line=exc.line, field=exc.field) from None
    refuse_dropped_rows(existing, incoming, target, source, flag)


def write_manifest_dir(df: pd.DataFrame, folder: str | os.PathLike) -> tuple[Path, Path]:
    folder = Path(folder)
    selected = df["selected"].astype(bool)
    return (write_manifest(df[selected], folder / SELECTION_FILE),
            write_manifest(df[~selected], folder / RESERVE_FILE))
