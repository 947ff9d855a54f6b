"""`export`: write the built dataset in a layout other tools read.

Formats (``ExportOptions.format``):

* ``llinet`` -- the authors' folder layout and six index pickles, so their
  public code trains on a rebuilt copy unchanged (:mod:`builder.export.official`);
* ``webdataset`` -- tar shards of ``.wav`` + ``.jpg`` + ``.json`` (+ ``.seg.png``)
  per clip with deterministic members (:mod:`builder.export.webdataset`);
* ``hf`` -- Parquet with explicit Audio / Image features for
  ``datasets.load_dataset("parquet", ...)`` (:mod:`builder.export.hf`).

Input: the manifest after ``trim`` and ``frames`` (and optionally ``curate``),
the media root its paths are relative to, and optionally the COCO annotations
(``annotate``) for the test masks. Which clips are in: see
:mod:`builder.manifest.membership`. Every file is written atomically; an export into
a folder that holds an earlier export of ours rewrites only what changed and
removes files the new export no longer has.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.export.hf import write_hf
from builder.export.official import write_llinet
from builder.export.samples import ExportReport, Sample, prepare_samples, unused_masks
from builder.export.webdataset import write_webdataset
from builder.io.atomic import atomic_write_json

REPORT_FILE = "export_report.json"


# Format name -> writer. Each writer fills the report (files written, notes) from the samples;
# the writers import only builder.export.samples, so this registry is the one place that knows them all.
Writer = Callable[[list[Sample], Path, ExportReport, "ExportOptions"], None]
WRITERS: dict[str, Writer] = {
    "llinet": lambda samples, out, report, o: write_llinet(samples, out, report, progress=o.progress),
    "webdataset": lambda samples, out, report, o: write_webdataset(
        samples, out, report, shard_size=o.shard_size, mtime=o.mtime, progress=o.progress),
    "hf": lambda samples, out, report, o: write_hf(samples, out, report, shard_size=o.shard_size,
                                                   progress=o.progress),
}
FORMATS = tuple(WRITERS)


@dataclass(frozen=True)
class ExportOptions:
    root: Path                              # media root (manifest paths are relative to it)
    out: Path
    format: str = "llinet"
    annotations: Path | None = None         # COCO file with the test masks
    shard_size: int = 1000                  # clips per WebDataset tar / Parquet file
    mtime: int = 0                          # tar member timestamps (SOURCE_DATE_EPOCH when set)
    progress: bool = True
    source: str = "<manifest>"              # manifest path, for error messages

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InputError(f"export format must be one of {FORMATS}, got {self.format!r}")
        if self.shard_size < 1:
            raise InputError(f"shard size must be >= 1, got {self.shard_size}")


def export(manifest: pd.DataFrame, options: ExportOptions) -> ExportReport:
    """Write ``options.format`` into ``options.out``; returns what was written."""
    root = Path(options.root)
    samples, selection = prepare_samples(manifest, root, options.annotations, options.source)
    if not samples:
        raise InputError("no clips to export: every row was excluded "
                         f"({dict(selection.excluded) or 'empty manifest'})", file=options.source)
    out = Path(options.out)
    previous = _previous_files(out)
    report = ExportReport(options.format, out, excluded=dict(sorted(selection.excluded.items())))
    WRITERS[options.format](samples, out, report, options)
    unused = unused_masks(samples, options.annotations)
    if unused:
        report.notes.append(f"{len(unused)} annotated clip(s) are not in the dataset (masks unused), "
                            f"e.g. {unused[0]}")
    counts: dict[str, Counter] = {}
    for sample in samples:
        counts.setdefault(sample.split, Counter())[sample.class_name] += 1
    report.counts = {s: dict(sorted(c.items())) for s, c in sorted(counts.items())}
    report.files = sorted(set(report.files))
    for stale in sorted(previous - set(report.files)):
        (out / stale).unlink(missing_ok=True)
    atomic_write_json(out / REPORT_FILE, {**report.to_dict(), "file_list": report.files})
    return report


def _previous_files(out: Path) -> set[str]:
    """Files of an earlier export into ``out``; refuse a non-empty folder that is not one."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise InputError("export destination exists and is not a folder", file=out)
    marker = out / REPORT_FILE
    if marker.is_file():
        try:
            listed = json.loads(marker.read_text(encoding="utf-8")).get("file_list", [])
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            raise InputError("unreadable export report; delete the folder to export again", file=marker) from None
        return {p for p in listed if isinstance(p, str) and not Path(p).is_absolute() and ".." not in Path(p).parts}
    if any(out.iterdir()):
        raise InputError("export destination is not empty and holds no earlier export (no "
                         f"{REPORT_FILE}); choose an empty folder", file=out)
    return set()
