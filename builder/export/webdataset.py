"""WebDataset export: per split, tar shards of ``<clip_id>.{wav,jpg,json}`` (+ ``.full.jpg``, ``.seg.png``).

A WebDataset sample is the group of consecutive members sharing a key (the
name up to the first dot); clip ids contain no dots, so the key is the clip
id. Layout: ``<out>/<split>/<split>-NNNNNN.tar`` with ``shard_size`` clips
each, clips in export order (class, rank, clip id), members of a clip in the
fixed order json, wav, jpg, full.jpg, seg.png. Masks are lossless PNG (0/255)
on the square frame. ``<out>/shards.json`` lists every shard with its clip
count and SHA-256.
"""
from __future__ import annotations

import json
from pathlib import Path

from builder.export.samples import ExportReport, Sample, iter_progress, mask_png, shards_by_split
from builder.io.atomic import atomic_write_json
from builder.io.tarball import write_tar
from builder.manifest.membership import sha256_file

SHARD_LIST = "shards.json"


def sample_members(sample: Sample) -> list[tuple[str, bytes | Path]]:
    key = sample.clip_id
    members: list[tuple[str, bytes | Path]] = [
        (f"{key}.json", (json.dumps(sample.metadata(), sort_keys=True, ensure_ascii=False) + "\n").encode()),
        (f"{key}.wav", sample.audio),
        (f"{key}.jpg", sample.frame),
    ]
    if sample.frame_full is not None:
        members.append((f"{key}.full.jpg", sample.frame_full))
    mask = sample.mask()
    if mask is not None:
        members.append((f"{key}.seg.png", mask_png(mask)))
    return members


def write_webdataset(samples: list[Sample], out: Path, report: ExportReport, shard_size: int, mtime: int,
                     progress: bool = True) -> None:
    listing = []
    for split, shards in shards_by_split(samples, shard_size).items():
        for number, shard in enumerate(iter_progress(shards, f"webdataset {split}", progress)):
            rel = f"{split}/{split}-{number:06d}.tar"
            members = []
            for sample in shard:
                members.extend(sample_members(sample))
                report.masks += int(sample.has_mask)
            write_tar(out / rel, members, mtime=mtime)
            report.files.append(rel)
            listing.append({"path": rel, "split": split, "clips": len(shard), "sha256": sha256_file(out / rel)})
    atomic_write_json(out / SHARD_LIST, {"format": "webdataset", "shards": listing})
    report.files.append(SHARD_LIST)
