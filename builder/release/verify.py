"""`verify`: check a rebuilt copy of the data against a release, clip by clip.

Each released clip is one of:

* ``missing``    -- its audio or frame file is not in the rebuild;
* ``identical``  -- both files have the release's SHA-256;
* ``equivalent`` -- the bytes differ but the decoded content agrees within
  the thresholds of :mod:`builder.release.fingerprint` (a re-encode, another
  YouTube format, another encoder);
* ``different``  -- a file cannot be decoded, or the content disagrees (a
  window from another time offset, another video, a truncated file).

The rebuild (``DATA``) may be: a media root as written by ``trim`` /
``frames`` (its ``manifest.csv`` paths are used when present, else the
release's file names), an official-layout export (``export_index.csv``), or a
media tarball from ``release --pack-media`` (extracted with the safe ``"data"``
filter). Before anything else the release's own files are checked against its
``SHA256SUMS``.
"""
from __future__ import annotations

import contextlib
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from builder.errors import InputError
from builder.io.atomic import atomic_write_json
from builder.io.tarball import safe_extract
from builder.manifest.media_root import MediaRoot
from builder.manifest.membership import media_file, sha256_file
from builder.release.build import CHECKSUMS, FINGERPRINTS, ID_MANIFEST, read_id_manifest
from builder.release.fingerprint import (
    THRESHOLDS,
    FingerprintError,
    audio_fingerprint,
    audio_similarity,
    frame_fingerprint,
    frame_similarity,
    load_fingerprints,
)

STATUSES = ("identical", "equivalent", "different", "missing")


@dataclass(frozen=True)
class VerifyOptions:
    release: Path
    data: Path
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    extract_to: Path | None = None
    max_missing: float = 0.0            # fraction of released clips that may be missing (link rot)
    progress: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.thresholds) - set(THRESHOLDS)
        if unknown:
            raise InputError(f"unknown threshold(s) {sorted(unknown)}; known: {sorted(THRESHOLDS)}")
        if not 0.0 <= self.max_missing <= 1.0:
            raise InputError(f"max missing fraction must be within 0..1, got {self.max_missing}")


@dataclass
class VerifyReport:
    release: str
    version: str | None
    data: str
    layout: str
    thresholds: dict[str, float]
    clips: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = Counter(c["status"] for c in self.clips)
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def per_class(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter] = {}
        for clip in self.clips:
            out.setdefault(clip["class"], Counter())[clip["status"]] += 1
        return {k: {s: int(v.get(s, 0)) for s in STATUSES} for k, v in sorted(out.items())}

    def passed(self, max_missing: float = 0.0) -> bool:
        counts = self.counts()
        allowed = max_missing * len(self.clips)
        return counts["different"] == 0 and (counts["missing"] == 0 or counts["missing"] <= allowed)

    def to_dict(self, max_missing: float = 0.0) -> dict[str, Any]:
        return {"release": self.release, "version": self.version, "data": self.data, "layout": self.layout,
                "thresholds": self.thresholds, "max_missing": max_missing, "passed": self.passed(max_missing),
                "counts": self.counts(), "per_class": self.per_class(), "clips": self.clips}


def check_release_integrity(release: Path) -> dict[str, str]:
    """Verify the release's files against ``SHA256SUMS``; returns name -> digest."""
    sums = release / CHECKSUMS
    if not sums.is_file():
        raise InputError("not a release folder (no SHA256SUMS)", file=sums)
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise InputError("expected '<sha256>  <relative path>'", file=sums, line=number)
        listed[name] = digest
    for name in (ID_MANIFEST, FINGERPRINTS):
        if name not in listed:
            raise InputError(f"{name} is not listed", file=sums)
    for name, digest in sorted(listed.items()):
        path = release / name
        if not path.is_file():
            raise InputError(f"release file {name} is missing", file=path)
        if path.suffix == ".tar":
            continue  # the packed media are what verify checks clip by clip; hashing GBs here adds nothing
        if sha256_file(path) != digest:
            raise InputError(f"release file {name} does not match SHA256SUMS (corrupted or edited)", file=path)
    return listed


@contextlib.contextmanager
def data_folder(data: Path, extract_to: Path | None) -> Iterator[Path]:
    """``data`` itself, or a tarball extracted safely (into ``extract_to`` or a temp folder)."""
    if data.is_dir():
        yield data
        return
    if not data.is_file():
        raise InputError("data folder or media tarball not found", file=data)
    if extract_to is not None:
        safe_extract(data, extract_to)
        yield extract_to
        return
    with tempfile.TemporaryDirectory(prefix="llinet-verify-") as tmp:
        safe_extract(data, tmp)
        yield Path(tmp)


def candidate_paths(data: Path, released: pd.DataFrame) -> tuple[str, dict[str, tuple[Path, Path, bool]]]:
    """(layout name, clip_id -> (audio path, frame path, frame is a full frame to crop))."""
    out: dict[str, tuple[Path, Path, bool]] = {}
    index = data / "export_index.csv"
    if index.is_file():
        from builder.export.official import DATA_DIR
        table = pd.read_csv(index, dtype=str, keep_default_na=False)
        by_id = {r["clip_id"]: r for r in table.to_dict("records")}
        for row in released.to_dict("records"):
            r = by_id.get(row["clip_id"])
            if r is None:
                out[row["clip_id"]] = (data / "\0missing", data / "\0missing", False)
                continue
            audio = r.get("audio") or r.get("audio_without_seg", "")
            image, full = (r["image"], False) if r.get("image") else (r.get("image_without_seg", ""), True)
            out[row["clip_id"]] = (media_file(data / DATA_DIR, audio, row["clip_id"], "audio", must_exist=False),
                                   media_file(data / DATA_DIR, image, row["clip_id"], "image", must_exist=False),
                                   full)
        return "llinet-export", out
    own: dict[str, dict] = {}
    manifest = MediaRoot(data).manifest
    if manifest.is_file():
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        if {"clip_id", "audio_path", "frame_path"} <= set(table.columns):
            own = {r["clip_id"]: r for r in table.to_dict("records") if r["audio_path"] and r["frame_path"]}
    for row in released.to_dict("records"):
        mine = own.get(row["clip_id"], {})
        audio = mine.get("audio_path") or row["audio_file"]
        frame = mine.get("frame_path") or row["frame_file"]
        out[row["clip_id"]] = (media_file(data, audio, row["clip_id"], "audio_path", must_exist=False),
                               media_file(data, frame, row["clip_id"], "frame_path", must_exist=False), False)
    return ("media-root+manifest" if own else "media-root"), out


def compare_clip(row: dict, audio: Path, frame: Path, crop: bool, reference, thresholds: dict) -> dict[str, Any]:
    result: dict[str, Any] = {"clip_id": row["clip_id"], "class": row["class"], "split": row["split"],
                              "audio_file": str(audio), "frame_file": str(frame)}
    absent = [name for name, path in (("audio", audio), ("frame", frame)) if not path.is_file()]
    if absent:
        return {**result, "status": "missing", "reason": " and ".join(absent) + " file missing"}
    audio_same = sha256_file(audio) == row["audio_sha256"]
    frame_same = sha256_file(frame) == row["frame_full_sha256" if crop else "frame_sha256"]
    if audio_same and frame_same:
        return {**result, "status": "identical", "reason": ""}
    ref_audio, ref_frame = reference
    reasons = []
    result["audio_identical"], result["frame_identical"] = audio_same, frame_same
    if not audio_same:
        try:
            printed = audio_fingerprint(audio)
            corr = audio_similarity(ref_audio.logmel, printed.logmel)
            drift = abs(printed.seconds - ref_audio.seconds)
            result.update(audio_correlation=round(corr, 4), audio_duration_diff=round(drift, 4))
            if corr < thresholds["audio_correlation"]:
                reasons.append(f"audio log-mel correlation {corr:.3f} < {thresholds['audio_correlation']}")
            if drift > thresholds["audio_duration"]:
                reasons.append(f"audio duration differs by {drift:.3f} s > {thresholds['audio_duration']}")
        except FingerprintError as exc:
            reasons.append(f"unreadable audio: {exc}")
    if not frame_same:
        try:
            corr, mad = frame_similarity(ref_frame, frame_fingerprint(frame, crop_square=crop))
            result.update(frame_correlation=round(corr, 4), frame_mad=round(mad, 2))
            if corr < thresholds["frame_correlation"]:
                reasons.append(f"frame correlation {corr:.3f} < {thresholds['frame_correlation']}")
            if mad > thresholds["frame_mad"]:
                reasons.append(f"frame mean abs difference {mad:.1f} > {thresholds['frame_mad']}")
        except FingerprintError as exc:
            reasons.append(f"unreadable frame: {exc}")
    return {**result, "status": "different" if reasons else "equivalent", "reason": "; ".join(reasons)}


def verify(options: VerifyOptions) -> VerifyReport:
    import json
    import sys

    from tqdm import tqdm

    release = Path(options.release)
    check_release_integrity(release)
    ids = read_id_manifest(release / ID_MANIFEST)
    for column in ("audio_file", "audio_sha256", "frame_file", "frame_sha256"):
        if column not in ids.columns:
            raise InputError(f"ID manifest lacks column {column!r}", file=release / ID_MANIFEST, line=1)
    released = ids[ids["released"] == "1"]
    prints = load_fingerprints(release / FINGERPRINTS)
    lacking = [c for c in released["clip_id"] if c not in prints]
    if lacking:
        raise InputError(f"{len(lacking)} released clip(s) have no fingerprint, e.g. {lacking[0]}",
                         file=release / FINGERPRINTS)
    version = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        version = json.loads((release / "stats.json").read_text(encoding="utf-8")).get("version")
    thresholds = {**THRESHOLDS, **options.thresholds}
    with data_folder(Path(options.data), options.extract_to) as data:
        layout, paths = candidate_paths(data, released)
        report = VerifyReport(str(release), version, str(options.data), layout, thresholds)
        rows = released.to_dict("records")
        for row in tqdm(rows, desc="verify", unit="clip", disable=not options.progress, dynamic_ncols=True,
                        file=sys.stderr):
            audio, frame, crop = paths[row["clip_id"]]
            report.clips.append(compare_clip(row, audio, frame, crop, prints[row["clip_id"]], thresholds))
    return report


def write_report(report: VerifyReport, path: Path, max_missing: float = 0.0) -> None:
    atomic_write_json(path, report.to_dict(max_missing))
