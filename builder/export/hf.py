"""Hugging Face ``datasets`` export: Parquet files with explicit Audio / Image features.

``<out>/data/<split>-NNNNN-of-MMMMM.parquet`` (``shard_size`` clips each) plus
``<out>/README.md`` whose YAML header maps the files to splits, so both
``datasets.load_dataset("parquet", data_files={"train": ".../data/train-*.parquet"})``
and ``datasets.load_dataset("<out>")`` work.

The feature types travel in the Parquet schema metadata under the key
``huggingface`` (``{"info": {"features": ...}}``), which is where ``datasets``
looks for them: ``audio`` is an ``Audio`` feature and ``image`` / ``image_full``
/ ``mask`` are ``Image`` features, each stored as a struct of the file's
bytes and its name (``{"bytes", "path"}``) -- the WAV/JPEG bytes are the built
files, byte for byte. ``mask`` (PNG, 0/255) is null for clips without one.
Written with pyarrow only; ``datasets`` is needed to read, not to write.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builder.export.samples import ExportReport, Sample, file_bytes, iter_progress, mask_png, shards_by_split
from builder.io.atomic import atomic_open, atomic_write_text

ROWS_PER_GROUP = 64
MEDIA = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
TEXT_COLUMNS = ("clip_id", "ytid", "class", "mid", "split", "source", "labels", "curation")
FLOAT_COLUMNS = ("start", "end", "window_offset", "window_seconds", "frame_time")
SCHEMA = pa.schema(
    [(name, pa.string()) for name in TEXT_COLUMNS]
    + [(name, pa.float64()) for name in FLOAT_COLUMNS]
    + [("has_mask", pa.bool_()), ("audio", MEDIA), ("image", MEDIA), ("image_full", MEDIA), ("mask", MEDIA)])
FEATURES = {
    **{name: {"dtype": "string", "_type": "Value"} for name in TEXT_COLUMNS},
    **{name: {"dtype": "float64", "_type": "Value"} for name in FLOAT_COLUMNS},
    "has_mask": {"dtype": "bool", "_type": "Value"},
    "audio": {"_type": "Audio"},
    "image": {"_type": "Image"},
    "image_full": {"_type": "Image"},
    "mask": {"_type": "Image"},
}


def _schema() -> pa.Schema:
    return SCHEMA.with_metadata({"huggingface": json.dumps({"info": {"features": FEATURES}}, sort_keys=True)})


def sample_row(sample: Sample) -> dict:
    meta = sample.metadata()
    row: dict[str, object] = {name: (None if meta.get(name) is None else str(meta[name])) for name in TEXT_COLUMNS}
    row.update({name: meta.get(name) for name in FLOAT_COLUMNS})
    row["has_mask"] = sample.has_mask
    row["audio"] = {"bytes": file_bytes(sample.audio), "path": f"{sample.clip_id}.wav"}
    row["image"] = {"bytes": file_bytes(sample.frame), "path": f"{sample.clip_id}.jpg"}
    row["image_full"] = ({"bytes": file_bytes(sample.frame_full), "path": f"{sample.clip_id}.full.jpg"}
                         if sample.frame_full is not None else None)
    mask = sample.mask()
    row["mask"] = {"bytes": mask_png(mask), "path": f"{sample.clip_id}.seg.png"} if mask is not None else None
    return row


def write_hf(samples: list[Sample], out: Path, report: ExportReport, shard_size: int, progress: bool = True) -> None:
    schema = _schema()
    configs = []
    for split, shards in shards_by_split(samples, shard_size).items():
        for number, shard in enumerate(iter_progress(shards, f"hf {split}", progress)):
            rel = f"data/{split}-{number:05d}-of-{len(shards):05d}.parquet"
            with atomic_open(out / rel, "wb") as handle:
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
                for start in range(0, len(shard), ROWS_PER_GROUP):
                    rows = [sample_row(s) for s in shard[start:start + ROWS_PER_GROUP]]
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                writer.close()
            report.masks += sum(s.has_mask for s in shard)
            report.files.append(rel)
        configs.append(f"  - split: {split}\n    path: data/{split}-*.parquet")
    card = ("---\nconfigs:\n- config_name: default\n  data_files:\n" + "\n".join(configs) + "\n---\n\n"
            "# INSTRUMENT-32CLASS rebuild (llinet export)\n\n"
            "Columns: clip ids and AudioSet times, class, split, the 3 s audio window (`audio`), the "
            "centre-square frame (`image`), the full frame (`image_full`) and, for annotated test clips, "
            "the binary mask on the square frame (`mask`, PNG 0/255).\n")
    atomic_write_text(out / "README.md", card)
    report.files.append("README.md")
