"""`release`: a versioned, checksummed, verifiable description of a built dataset.

``build_release(manifest, options)`` writes into ``OUT`` (which must not exist
or be empty; it is assembled in a sibling temp folder and renamed into place,
so a failed run leaves nothing half-written):

* ``clips.csv`` -- the ID manifest, AudioSet-style (``YTID, start_seconds,
  end_seconds, positive_labels`` first), one row per clip considered (selected
  at any point or tried by fetch): window offset, frame time, class, split,
  released or why not, curation decision, availability at build time with the
  time it was checked, and the built files' names and SHA-256;
* ``annotations.json`` -- the COCO masks, byte for byte as given (when given);
* ``fingerprints.npz`` -- content fingerprints for ``verify``
  (:mod:`builder.release.fingerprint`);
* ``stats.json`` and ``class_distribution.png`` (:mod:`builder.release.stats`);
* ``provenance.json`` (:mod:`builder.release.provenance`);
* ``media-<version>.tar`` with ``--pack-media``: the built audio and frames
  under their media-root paths, deterministic tar (verify reads it directly);
* ``croissant.json`` (:mod:`builder.release.croissant`), then ``SHA256SUMS`` over every
  other file (``sha256sum -c`` format, sorted).

Determinism: rows and members sorted, fixed timestamps (the release date), no
machine paths; the same inputs, date and tool versions give the same bytes.
"""
from __future__ import annotations

import calendar
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from builder.errors import InputError
from builder.export.samples import prepare_samples
from builder.io.atomic import atomic_open, atomic_write_json, atomic_write_text
from builder.io.status_log import StatusLog
from builder.io.tarball import write_tar
from builder.manifest.media_root import ANNOTATIONS, MediaRoot
from builder.manifest.membership import clip_order, curation_decision, media_file, sha256_file, truthy
from builder.release.fingerprint import FingerprintError, audio_fingerprint, frame_fingerprint, save_fingerprints

VERSION_RE = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
ID_MANIFEST = "clips.csv"
FINGERPRINTS = "fingerprints.npz"
CHECKSUMS = "SHA256SUMS"
AVAILABILITY = {"ok": "available", "unavailable": "unavailable", "failed": "failed", "": "not_checked"}
ID_COLUMNS = ("YTID", "start_seconds", "end_seconds", "positive_labels", "clip_id", "class", "mid", "split",
              "window_offset", "window_seconds", "frame_time", "released", "exclusion", "curation",
              "curation_reason", "availability", "checked_at", "has_mask", "audio_seconds", "audio_file",
              "audio_sha256", "frame_file", "frame_sha256", "frame_full_file", "frame_full_sha256")


@dataclass(frozen=True)
class ReleaseOptions:
    root: Path                                  # media root of the build
    out: Path
    version: str
    annotations: Path | None = None
    manifests_dir: Path | None = None           # select_report.json / audit.json, for provenance
    manifest_path: Path | None = None           # the manifest file, for provenance and errors
    date: str | None = None                     # YYYY-MM-DD; default SOURCE_DATE_EPOCH's day, else today (UTC)
    pack_media: bool = False
    name: str = "INSTRUMENT-32CLASS (llinet rebuild)"
    url: str = "https://LLINet.github.io"
    license_url: str = "https://creativecommons.org/licenses/by/4.0/"
    progress: bool = True

    def __post_init__(self) -> None:
        if not VERSION_RE.fullmatch(self.version):
            raise InputError(f"version must look like X.Y.Z (semantic versioning), got {self.version!r}",
                             field="version")
        if self.date is not None and not _valid_date(self.date):
            raise InputError(f"date must be YYYY-MM-DD, got {self.date!r}", field="date")


@dataclass
class ReleaseSummary:
    out: Path
    files: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def _valid_date(text: str) -> bool:
    if not DATE_RE.fullmatch(text):
        return False
    try:
        time.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def release_date(option: str | None) -> str:
    if option:
        return option
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if epoch.isdigit() else time.time()
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


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


def id_manifest(manifest: pd.DataFrame, root: Path, annotations: Path | None, source: str,
                progress: bool = True) -> tuple[pd.DataFrame, list[str], list, list]:
    """The ID manifest plus (clip ids, audio prints, frame prints) of the released clips."""
    import sys

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
        record = {"YTID": row["ytid"], "start_seconds": row["start"], "end_seconds": row["end"],
                  "positive_labels": _text(row, "labels"), "clip_id": clip_id, "class": row["class"],
                  "mid": _text(row, "mid"), "split": row["split"], "window_offset": _float(row, "window_offset"),
                  "window_seconds": _float(row, "window_seconds"), "frame_time": _float(row, "frame_time"),
                  "released": int(sample is not None), "exclusion": "" if sample else _text(row, "_reason"),
                  "curation": curation_decision(row.get("curation", ""), lines[clip_id], source),
                  "curation_reason": _text(row, "curation_reason"),
                  "availability": AVAILABILITY.get(fetch, fetch), "checked_at": attempts.get(clip_id, ""),
                  "has_mask": int(bool(sample and sample.has_mask)), "audio_seconds": float("nan")}
        for key in ("audio_file", "audio_sha256", "frame_file", "frame_sha256", "frame_full_file",
                    "frame_full_sha256"):
            record[key] = ""
        if sample is not None:
            try:
                audio = audio_fingerprint(sample.audio)
                frame = frame_fingerprint(sample.frame)
            except FingerprintError as exc:
                raise InputError(f"clip {clip_id}: {exc}", file=sample.audio) from None
            record.update(audio_seconds=round(audio.seconds, 6), audio_file=str(row["audio_path"]),
                          audio_sha256=sha256_file(sample.audio), frame_file=str(row["frame_path"]),
                          frame_sha256=sha256_file(sample.frame))
            if sample.frame_full is not None:
                record.update(frame_full_file=str(row["frame_full_path"]),
                              frame_full_sha256=sha256_file(sample.frame_full))
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


def build_release(manifest: pd.DataFrame, options: ReleaseOptions) -> ReleaseSummary:
    from builder.release.croissant import croissant
    from builder.release.provenance import provenance
    from builder.release.stats import compute_stats, write_figure

    root, out = Path(options.root), Path(options.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("release folder exists and is not empty; releases are immutable, choose a new folder",
                         file=out)
    date = release_date(options.date)
    source = str(options.manifest_path or "<manifest>")
    ids, clip_ids, audio_prints, frame_prints = id_manifest(manifest, root, options.annotations, source,
                                                            options.progress)
    if not int(ids["released"].sum()):
        raise InputError("nothing to release: no clip passed every stage", file=source)
    stage = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    stage.mkdir(parents=True)
    try:
        write_id_manifest(ids, stage / ID_MANIFEST)
        save_fingerprints(stage / FINGERPRINTS, clip_ids, audio_prints, frame_prints)
        if options.annotations is not None:
            shutil.copyfile(options.annotations, stage / ANNOTATIONS)   # the media root's name for the masks
        stats = compute_stats(_numeric(ids), options.version, date)
        atomic_write_json(stage / "stats.json", stats)
        write_figure(stats, stage / "class_distribution.png")
        media_tar = None
        if options.pack_media:
            media_tar = f"media-{options.version}.tar"
            write_tar(stage / media_tar, _media_members(ids, root), mtime=_epoch(date))
        release_options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                           if k not in ("root", "out", "annotations", "manifests_dir", "manifest_path", "progress")}
        atomic_write_json(stage / "provenance.json", provenance(
            root=root, manifests_dir=options.manifests_dir,
            inputs={"manifest": options.manifest_path, "annotations": options.annotations},
            release_options={**release_options, "date": date}))
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        description = (f"Rebuild of INSTRUMENT-32CLASS (Jia et al., ACM MM 2020) from AudioSet: "
                       f"{stats['totals']['released']} clips of {stats['totals']['classes']} instrument classes "
                       "with 3 s audio windows, video frames and test-frame masks. Media are not distributed "
                       "unless packed; the ID manifest and fingerprints let anyone rebuild and verify.")
        atomic_write_json(stage / "croissant.json", croissant(
            stage, files, name=options.name, version=options.version, date=date, url=options.url,
            license_url=options.license_url, description=description, media_tar=media_tar))
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        atomic_write_text(stage / CHECKSUMS, "".join(f"{sha256_file(stage / f)}  {f}\n" for f in files))
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return ReleaseSummary(out, files + [CHECKSUMS], stats)


def _numeric(ids: pd.DataFrame) -> pd.DataFrame:
    out = ids.copy()
    for column in ("start_seconds", "end_seconds", "window_offset", "window_seconds", "frame_time",
                   "audio_seconds", "released", "has_mask"):
        out[column] = pd.to_numeric(out[column], errors="coerce")
    for column in ("curation", "curation_reason", "exclusion", "availability", "checked_at", "class", "split"):
        out[column] = out[column].fillna("").astype(str)
    return out


def _epoch(date: str) -> int:
    return calendar.timegm(time.strptime(date, "%Y-%m-%d"))


def _media_members(ids: pd.DataFrame, root: Path) -> list[tuple[str, Path]]:
    members = {}
    for row in ids[ids["released"] == 1].to_dict("records"):
        for column in ("audio_file", "frame_file", "frame_full_file"):
            rel = row[column]
            if rel:
                members[Path(rel).as_posix()] = media_file(root, rel, row["clip_id"], column)
    return sorted(members.items())
