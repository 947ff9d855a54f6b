"""A small, redistributable slice of AudioSet metadata for one class list.

Keeps every segment row carrying any target MID or ontology descendant of one
(so `select` gives byte-identical results on the slice and on the full lists,
with or without ``--include-descendants``), in Google's format, gzip-compressed
deterministically (mtime 0). The offline demo ships such a slice.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

from builder.audioset.classes import TargetClass
from builder.audioset.parse import SOURCE_FILES, Ontology, iter_segments
from builder.io.atomic import atomic_open

HEADER = "# AudioSet segments carrying the listed classes' MIDs (llinet subset of {name})\n" \
         "# YTID, start_seconds, end_seconds, positive_labels\n"


def write_subset(sources: dict[str, list[Path]], classes: list[TargetClass], ontology: Ontology,
                 ontology_path: Path, out_dir: str | os.PathLike) -> dict[str, int]:
    """Write ``out_dir/<source file>.gz`` per source plus ``ontology.json``; returns rows kept per source."""
    out = Path(out_dir)
    keep = ontology.closure(c.mid for c in classes)
    kept: dict[str, int] = {}
    for source, files in sources.items():
        name = SOURCE_FILES[source]
        buffer = io.StringIO()
        buffer.write(HEADER.format(name=name))
        n = 0
        for path in files:
            for seg in iter_segments(path):
                if keep.intersection(seg.labels):
                    buffer.write(f'{seg.ytid}, {seg.start:.3f}, {seg.end:.3f}, "{",".join(seg.labels)}"\n')
                    n += 1
        with atomic_open(out / f"{name}.gz", "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
                gz.write(buffer.getvalue().encode("utf-8"))
        kept[source] = n
    with atomic_open(out / "ontology.json", "wb") as dst, open(ontology_path, "rb") as src:
        shutil.copyfileobj(src, dst)
    return kept
