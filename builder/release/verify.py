"""`verify`: check a rebuilt copy of the data against a release, clip by clip, file by file.

Each released clip is one of:

* ``missing``    -- one of its files is not in the rebuild;
* ``identical``  -- every file has the release's SHA-256;
* ``equivalent`` -- bytes differ, but each file has the release's format
  (container, codec, sample rate, channels, samples; image format, size,
  colours), decodes without complaint, and its content agrees within the
  thresholds of :mod:`builder.release.fingerprint` (another encoder, another
  YouTube encode of the same video);
* ``different``  -- any finding: another format (resampled, down-mixed,
  re-encoded into another container), a decoder complaint (a WAV header that
  contradicts its data, a damaged JPEG body), content that disagrees (another
  time offset, another video), a mask or label that differs.

What is checked (:mod:`builder.release.verify_exports`): a media root (an
extracted ``media-X.Y.Z.tar`` included; the tarball itself is extracted with
the safe ``"data"`` filter), an official-layout export, a WebDataset export
or a Hugging Face export -- exports also file by file against the checksums
they recorded. Anything else is refused. Splits a layout cannot hold are
reported as such, not as missing. Before anything else the release's own
files are checked against its ``SHA256SUMS``.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from builder.errors import InputError
from builder.io.atomic import atomic_write_json
from builder.io.tarball import safe_extract
from builder.manifest.media_root import ANNOTATIONS
from builder.manifest.membership import sha256_file
from builder.release.build import CHECKSUMS, FINGERPRINTS, ID_MANIFEST, read_id_manifest
from builder.release.fingerprint import THRESHOLDS, load_fingerprints
from builder.release.id_manifest import AUDIO_FORMAT_COLUMNS
from builder.release.media_format import ffmpeg_decode_errors
from builder.release.verify_exports import Item, open_layout
from builder.release.verify_format import check_labels, check_mask, check_media, corrupt, finding

STATUSES = ("identical", "equivalent", "different", "missing")
MEDIA_ROLES = ("audio", "frame", "frame_full")


@dataclass(frozen=True)
class VerifyOptions:
    release: Path
    data: Path
    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS))
    extract_to: Path | None = None
    max_missing: float = 0.0            # fraction of released clips that may be missing (link rot)
    progress: bool = True
    # Clips compared at once. A changed file costs an FFmpeg run per frame (~0.1 s, mostly process start)
    # and a log-mel; threads overlap them (the subprocesses and numpy release the GIL).
    workers: int = min(8, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}", field="workers")
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
    not_in_layout: dict[str, int] = field(default_factory=dict)     # split -> released clips it cannot hold
    export_findings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = Counter(c["status"] for c in self.clips)
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def per_class(self) -> dict[str, dict[str, int]]:
        out: dict[str, Counter] = {}
        for clip in self.clips:
            out.setdefault(clip["class"], Counter())[clip["status"]] += 1
        return {k: {s: int(v.get(s, 0)) for s in STATUSES} for k, v in sorted(out.items())}

    def findings(self) -> list[dict[str, Any]]:
        """Every finding, the export's own first, each with its clip id."""
        return list(self.export_findings) + [{"clip_id": c["clip_id"], **f} for c in self.clips
                                             for f in c.get("findings", [])]

    def passed(self, max_missing: float = 0.0) -> bool:
        counts = self.counts()
        allowed = max_missing * len(self.clips)
        return (counts["different"] == 0 and not self.export_findings
                and (counts["missing"] == 0 or counts["missing"] <= allowed))

    def to_dict(self, max_missing: float = 0.0) -> dict[str, Any]:
        return {"release": self.release, "version": self.version, "data": self.data, "layout": self.layout,
                "thresholds": self.thresholds, "max_missing": max_missing, "passed": self.passed(max_missing),
                "counts": self.counts(), "per_class": self.per_class(), "not_in_layout": self.not_in_layout,
                "export_findings": self.export_findings, "notes": self.notes, "clips": self.clips}


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


class ReleaseMasks:
    """The release's masks on each clip's square frame, decoded when first asked for."""

    def __init__(self, release: Path) -> None:
        from builder.export.masks import load_masks

        path = release / ANNOTATIONS
        self.index = load_masks(path) if path.is_file() else None

    def get(self, row: dict[str, str]) -> np.ndarray | None:
        from builder.export.masks import mask_for_frame

        if self.index is None or row["clip_id"] not in self.index:
            return None
        if row.get("frame_width"):
            side = int(row["frame_width"])
            full = ((int(row["frame_full_width"]), int(row["frame_full_height"]))
                    if row.get("frame_full_width") else None)
        else:  # a release made before frame sizes were recorded: the annotated image's own size tells
            image = self.index.images[row["clip_id"]]
            width, height = int(image["width"]), int(image["height"])
            side, full = min(width, height), ((width, height) if width != height else None)
        return mask_for_frame(self.index, row["clip_id"], row["class"], side, full)


def compare_clip(row: dict[str, str], items: list[Item], reference: tuple[Any, np.ndarray],
                 thresholds: dict[str, float], masks: ReleaseMasks) -> dict[str, Any]:
    result: dict[str, Any] = {"clip_id": row["clip_id"], "class": row["class"], "split": row["split"]}
    files: dict[str, str] = {}
    for item in items:
        if item.role != "labels":
            key = item.role if item.role not in files else f"{item.role}_{sum(k.startswith(item.role) for k in files)}"
            files[key] = item.name
    result["files"] = files
    found: list[dict] = []
    absent: list[str] = []
    identical = True
    to_decode: list[tuple[Item, bytes]] = []
    for item in items:
        if item.source is None:
            absent.append(item.role.replace("_", " "))
            result.setdefault("missing_files", []).append(item.name)
            continue
        if item.role == "labels":
            found += check_labels(item, row)
        elif item.role == "mask":
            found += check_mask(item, masks.get(row))
        elif item.role in MEDIA_ROLES:
            same, more, jpeg = check_media(item.role, item, row, reference, thresholds, result)
            identical &= same
            found += more
            if jpeg is not None:
                to_decode.append((item, jpeg))
    if to_decode:    # one FFmpeg run for all of the clip's changed JPEGs
        for (item, _), errors in zip(to_decode, ffmpeg_decode_errors([d for _, d in to_decode]), strict=True):
            if errors:
                found.append(corrupt(item.role, item, errors))
    if found:
        status = "different"
    elif absent:
        status = "missing"
    else:
        status = "identical" if identical else "equivalent"
    reasons = [f["message"] for f in found]
    if absent and not found:
        reasons = [" and ".join(dict.fromkeys(absent)) + " file missing"]
    return {**result, "status": status, "reason": "; ".join(reasons), "findings": found}


def verify(options: VerifyOptions) -> VerifyReport:
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
    masks = ReleaseMasks(release)
    rows = {str(r["clip_id"]): {str(k): v for k, v in r.items()} for r in released.to_dict("records")}
    with data_folder(Path(options.data), options.extract_to) as data:
        layout = open_layout(data, released)
        report = VerifyReport(str(release), version, str(options.data), layout.kind, thresholds,
                              not_in_layout=dict(sorted(layout.not_in_layout.items())))
        if not set(AUDIO_FORMAT_COLUMNS) <= set(ids.columns):
            report.notes.append("the release records no file formats (made by an older llinet): formats are "
                                "not compared, only decoding and content")
        seen: set[str] = set()
        bar = tqdm(total=len(layout.expected), desc="verify", unit="clip", disable=not options.progress,
                   dynamic_ncols=True, file=sys.stderr)

        def unique() -> Iterator[tuple[str, list[Item]]]:
            for clip_id, items in layout.items():
                if clip_id in seen:
                    layout.findings.append(finding("clip", clip_id, "clip_id", "once", "twice",
                                                   f"clip {clip_id} occurs twice in the export"))
                    continue
                seen.add(clip_id)
                yield clip_id, items

        def compare(pair: tuple[str, list[Item]]) -> dict[str, Any]:
            return compare_clip(rows[pair[0]], pair[1], prints[pair[0]], thresholds, masks)

        with bar, ThreadPoolExecutor(options.workers) as pool:
            for result in _bounded_map(pool, compare, unique(), 2 * options.workers):
                report.clips.append(result)
                bar.update()
        for clip_id in layout.expected:
            if clip_id not in seen:
                row = rows[clip_id]
                report.clips.append({"clip_id": clip_id, "class": row["class"], "split": row["split"],
                                     "status": "missing", "reason": f"not in the {layout.kind}", "findings": []})
        report.export_findings = layout.findings
        report.notes += layout.notes
    order = {c: n for n, c in enumerate(released["clip_id"])}
    report.clips.sort(key=lambda c: order[c["clip_id"]])
    return report


def _bounded_map(pool: ThreadPoolExecutor, fn, items: Iterator, ahead: int) -> Iterator:
    """``pool.map`` in order, but reading at most ``ahead`` items ahead (a shard's bytes stay few in memory)."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def write_report(report: VerifyReport, path: Path, max_missing: float = 0.0) -> None:
    atomic_write_json(path, report.to_dict(max_missing))
