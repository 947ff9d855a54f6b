"""WebDataset export: per split, tar shards of ``<clip_id>.{json,cls,wav,jpg}`` (+ ``.full.jpg``, ``.seg.png``).

A WebDataset sample is the group of consecutive members sharing a key (the
name up to the first dot); clip ids contain no dots, so the key is the clip
id. Layout: ``<out>/<split>/<split>-NNNNNN.tar`` with ``shard_size`` clips
each; members of a clip in the fixed order json, cls, wav, jpg, full.jpg,
seg.png. ``.cls`` is the class index as ASCII digits (``webdataset`` decodes
it to an int): the position in :func:`builder.export.about.class_names`, the
same number as the Hugging Face export's ``ClassLabel``. Masks are lossless
PNG (0/255) on the square frame.

Clip order: a seeded, stratified interleave of the classes
(:func:`interleave`), so every shard holds a mix of classes in proportion to
the split -- a stream read shard by shard, or a shard-level shuffle with a
small buffer, never sees one class at a time. The order depends only on the
clip ids and the seed (:data:`SEED`), so the shards are byte-reproducible.

``<out>/shards.json`` lists every shard (path, split, clips, classes, bytes,
SHA-256), the per-split totals, the class names in index order and the seed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from builder.export.about import class_names
from builder.export.samples import ExportReport, Sample, iter_progress, mask_png
from builder.io.atomic import atomic_write_json
from builder.io.tarball import write_tar
from builder.manifest.membership import sha256_file

SHARD_LIST = "shards.json"
SEED = 0
ORDER = "seeded class interleave"


def _unit(seed: int, clip_id: str) -> float:
    """A reproducible number in [0, 1) per (seed, clip): no RNG state, no dependence on input order."""
    digest = hashlib.sha256(f"{seed}:{clip_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def interleave(samples: list[Sample], seed: int = SEED) -> list[Sample]:
    """The samples with classes spread evenly: class ``c``'s k-th of n clips sits near position (k + u) / n.

    Within a class the clips are shuffled by ``seed``; ``u`` (the class's phase) is drawn from the
    seed too, so which class comes first changes with it. Sorting every clip by that fraction
    yields a stratified order: any run of m clips holds about m * n_c / N clips of class c.
    """
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.class_name, []).append(sample)
    keyed = []
    for name, group in by_class.items():
        group = sorted(group, key=lambda s: _unit(seed, s.clip_id))
        phase = _unit(seed, f"class:{name}")
        keyed += [((k + phase) / len(group), s.clip_id, s) for k, s in enumerate(group)]
    return [s for _, _, s in sorted(keyed, key=lambda item: (item[0], item[1]))]


def sample_members(sample: Sample, class_index: int) -> list[tuple[str, bytes | Path]]:
    key = sample.clip_id
    members: list[tuple[str, bytes | Path]] = [
        (f"{key}.json", (json.dumps(sample.metadata(), sort_keys=True, ensure_ascii=False) + "\n").encode()),
        (f"{key}.cls", str(class_index).encode("ascii")),
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
    names = class_names(s.class_name for s in samples)
    index = {name: i for i, name in enumerate(names)}
    by_split: dict[str, list[Sample]] = {}
    for sample in samples:
        by_split.setdefault(sample.split, []).append(sample)
    listing, totals = [], {}
    for split, group in sorted(by_split.items()):
        split_bytes = 0
        ordered = interleave(group)
        shards = [ordered[i:i + shard_size] for i in range(0, len(ordered), shard_size)]
        for number, shard in enumerate(iter_progress(shards, f"webdataset {split}", progress)):
            rel = f"{split}/{split}-{number:06d}.tar"
            members = []
            for sample in shard:
                members.extend(sample_members(sample, index[sample.class_name]))
                report.masks += int(sample.has_mask)
            write_tar(out / rel, members, mtime=mtime)
            size, digest = (out / rel).stat().st_size, sha256_file(out / rel)
            split_bytes += size
            report.files.append(rel)
            report.checksums[rel] = {"sha256": digest, "bytes": size}
            listing.append({"path": rel, "split": split, "clips": len(shard),
                            "classes": len({s.class_name for s in shard}), "bytes": size, "sha256": digest})
        totals[split] = {"shards": len(shards), "clips": len(group), "bytes": split_bytes}
    atomic_write_json(out / SHARD_LIST, {"format": "webdataset", "order": ORDER, "seed": SEED,
                                         "shard_size": shard_size, "class_names": names, "splits": totals,
                                         "shards": listing})
    report.files.append(SHARD_LIST)
