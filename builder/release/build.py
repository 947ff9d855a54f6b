"""`release`: a versioned, checksummed, verifiable description of a built dataset.

``build_release(manifest, options)`` writes into ``OUT`` (which must not exist
or be empty; it is assembled in a sibling temp folder and renamed into place,
so a failed run leaves nothing half-written):

* ``clips.csv`` -- the ID manifest (:mod:`builder.release.id_manifest`): every
  clip considered, released or why not, with its files' hashes and formats;
* ``annotations.json`` -- the COCO masks, byte for byte as given (when given),
  and ``masks.csv``, the same masks one row per image (:mod:`builder.release.tables`);
* ``fingerprints.npz`` -- content fingerprints for ``verify``
  (:mod:`builder.release.fingerprint`);
* ``stats.json`` and ``class_distribution.png`` (:mod:`builder.release.stats`);
* ``provenance.json`` (:mod:`builder.release.provenance`);
* ``media-<version>.tar`` with ``--pack-media``: the built audio and frames
  under their media-root paths, deterministic tar (verify reads it directly);
* ``DATASET.md`` (this release's datasheet) and ``README.md`` (how to load it)
  (:mod:`builder.release.documents`);
* ``croissant.json`` (:mod:`builder.release.croissant`), then ``SHA256SUMS`` over every
  other file (``sha256sum -c`` format, sorted).

Dates: ``datePublished`` is the release date (``--date``; default
``SOURCE_DATE_EPOCH``'s day, else today, UTC -- never earlier than the last
stage record, since a release cannot be published before its data was made);
``dateCreated`` / ``dateModified`` are the first / last day the stages
recorded, unless given (:mod:`builder.release.metadata`).

Determinism: rows and members sorted, fixed timestamps (the release date), no
machine paths; the same inputs, date and tool versions give the same bytes.
"""
from __future__ import annotations

import calendar
import logging
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from builder.errors import InputError
from builder.io.atomic import atomic_write_json, atomic_write_text
from builder.io.tarball import write_tar
from builder.manifest.media_root import ANNOTATIONS, AUDIO_DIR, FRAMES_DIR, FRAMES_FULL_DIR
from builder.manifest.membership import media_file, sha256_file
from builder.release.croissant import DatasetInfo, MediaSet, croissant
from builder.release.fingerprint import save_fingerprints
from builder.release.id_manifest import id_manifest, numeric_ids, read_id_manifest, write_id_manifest
from builder.release.metadata import Agent, recorded_days, unset_agent

log = logging.getLogger(__name__)

VERSION_RE = re.compile(r"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
ID_MANIFEST = "clips.csv"
FINGERPRINTS = "fingerprints.npz"
CHECKSUMS = "SHA256SUMS"
__all__ = ["CHECKSUMS", "FINGERPRINTS", "ID_MANIFEST", "ReleaseOptions", "ReleaseSummary", "build_release",
           "read_id_manifest"]


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
    sd_license: str | None = None               # licence of croissant.json itself; default: license_url
    in_language: tuple[str, ...] = ("en",)      # language of the labels and texts (BCP 47)
    creator: tuple[Agent, ...] = ()             # nobody is invented: unset is written as UNSET
    publisher: tuple[Agent, ...] = ()
    date_created: str | None = None             # default: the first day a stage recorded
    date_modified: str | None = None            # default: the last day a stage recorded
    description: str | None = None              # default: generated from the counts
    progress: bool = True

    def __post_init__(self) -> None:
        if not VERSION_RE.fullmatch(self.version):
            raise InputError(f"version must look like X.Y.Z (semantic versioning), got {self.version!r}",
                             field="version")
        for name in ("date", "date_created", "date_modified"):
            value = getattr(self, name)
            if value is not None and not _valid_date(value):
                raise InputError(f"{name.replace('_', ' ')} must be YYYY-MM-DD, got {value!r}", field=name)


@dataclass
class ReleaseSummary:
    out: Path
    files: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    unset: list[str] = field(default_factory=list)         # Croissant properties written as UNSET


def _valid_date(text: str) -> bool:
    if not DATE_RE.fullmatch(text):
        return False
    try:
        time.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def release_date(option: str | None, last_recorded: str | None = None) -> str:
    """The release date: the option, else SOURCE_DATE_EPOCH's day or today -- not before ``last_recorded``."""
    if option:
        if last_recorded and option < last_recorded:
            raise InputError(f"release date {option} is before the build's last recorded stage run "
                             f"({last_recorded}); a release cannot be published before its data was made",
                             field="date")
        return option
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    seconds = int(epoch) if epoch.isdigit() else time.time()
    day = time.strftime("%Y-%m-%d", time.gmtime(seconds))
    return max(day, last_recorded) if last_recorded else day


def dates(options: ReleaseOptions, root: Path) -> tuple[str, str, str]:
    """(dateCreated, dateModified, datePublished), checked to be in that order."""
    first, last = recorded_days(root)
    published = release_date(options.date, options.date_modified or last)
    created = options.date_created or first or published
    modified = options.date_modified or last or published
    if not created <= modified <= published:
        raise InputError(f"dates out of order: created {created}, modified {modified}, published {published}",
                         field="date_created")
    return created, modified, published


def build_release(manifest: pd.DataFrame, options: ReleaseOptions) -> ReleaseSummary:
    from builder.release.documents import write_documents
    from builder.release.provenance import provenance
    from builder.release.stats import compute_stats, write_figure
    from builder.release.tables import MASKS_TABLE, write_masks_table

    root, out = Path(options.root), Path(options.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("release folder exists and is not empty; releases are immutable, choose a new folder",
                         file=out)
    created, modified, date = dates(options, root)
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
            write_masks_table(options.annotations, stage / MASKS_TABLE)
        stats = compute_stats(numeric_ids(ids), options.version, date)
        atomic_write_json(stage / "stats.json", stats)
        write_figure(stats, stage / "class_distribution.png")
        media_tar: str | None = None
        media: tuple[MediaSet, ...] = ()
        if options.pack_media:
            media_tar = f"media-{options.version}.tar"
            write_tar(stage / media_tar, _media_members(ids, root), mtime=_epoch(date))
            media = media_sets(ids)
        skipped = ("root", "out", "annotations", "manifests_dir", "manifest_path", "progress")
        release_options = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()
                           if k not in skipped}
        atomic_write_json(stage / "provenance.json", provenance(
            root=root, manifests_dir=options.manifests_dir,
            inputs={"manifest": options.manifest_path, "annotations": options.annotations},
            release_options={**release_options, "date": date}))
        info, unset = dataset_info(options, stats, created, modified, date)
        write_documents(stage, info, stats, media_tar=media_tar, pack_media=options.pack_media)
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        atomic_write_json(stage / "croissant.json", croissant(stage, files, info, media_tar=media_tar, media=media))
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        atomic_write_text(stage / CHECKSUMS, "".join(f"{sha256_file(stage / f)}  {f}\n" for f in files))
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    for prop in unset:
        log.warning(f"croissant.json: no {prop} given, written as UNSET; name one with release --{prop} "
                    "or in a --config file")
    return ReleaseSummary(out, files + [CHECKSUMS], stats, unset)


def dataset_info(options: ReleaseOptions, stats: dict[str, Any], created: str, modified: str,
                 published: str) -> tuple[DatasetInfo, list[str]]:
    """The Croissant dataset properties of this release, and which of them nobody set."""
    description = options.description or (
        f"Rebuild of INSTRUMENT-32CLASS (Jia et al., ACM MM 2020) from AudioSet: {stats['totals']['released']} "
        f"clips of {stats['totals']['classes']} instrument classes with 3 s audio windows, video frames and "
        "unseen-class frame masks. Media are not distributed unless packed; the ID manifest and fingerprints "
        "let anyone rebuild and verify.")
    unset = [role for role in ("creator", "publisher") if not getattr(options, role)]
    info = DatasetInfo(
        name=options.name, description=description, version=options.version, url=options.url,
        license=options.license_url, sd_license=options.sd_license or options.license_url,
        in_language=options.in_language,
        creator=[a.jsonld() for a in options.creator] or [unset_agent("creator")],
        publisher=[a.jsonld() for a in options.publisher] or [unset_agent("publisher")],
        date_created=created, date_modified=modified, date_published=published)
    return info, unset


def _epoch(date: str) -> int:
    return calendar.timegm(time.strptime(date, "%Y-%m-%d"))


# record set (named after the media-root folder), ID manifest column, MIME type, Croissant data type, description
MEDIA_KINDS = (
    (AUDIO_DIR, "audio_file", "audio/wav", "sc:AudioObject", "3 s audio windows as built (WAV)."),
    (FRAMES_DIR, "frame_file", "image/jpeg", "sc:ImageObject", "Centre-square frames as built (JPEG)."),
    (FRAMES_FULL_DIR, "frame_full_file", "image/jpeg", "sc:ImageObject", "Full frames as built (JPEG)."),
)


def media_sets(ids: pd.DataFrame) -> tuple[MediaSet, ...]:
    """The packed media's FileSets: glob patterns from the released files' own folders and suffixes."""
    released = ids[ids["released"] == 1]
    out = []
    for record_set, column, mime, data_type, text in MEDIA_KINDS:
        paths = [(Path(str(p)), str(c)) for p, c in zip(released[column], released["clip_id"], strict=True) if p]
        if not paths:
            continue
        patterns = tuple(sorted({(p.parent / f"*{p.suffix}").as_posix() for p, _ in paths}))
        out.append(MediaSet(record_set, column, patterns, mime, data_type,
                            named_by_clip=all(p.stem == c for p, c in paths), description=text))
    return tuple(out)


def _media_members(ids: pd.DataFrame, root: Path) -> list[tuple[str, Path]]:
    members = {}
    for row in ids[ids["released"] == 1].to_dict("records"):
        for column in ("audio_file", "frame_file", "frame_full_file"):
            rel = row[column]
            if rel:
                members[Path(rel).as_posix()] = media_file(root, rel, row["clip_id"], column)
    return sorted(members.items())
