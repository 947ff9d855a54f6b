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
``class`` is a ``ClassLabel``: an int64 column whose names are
:func:`builder.export.about.class_names` (the 32 classes in class-list order,
then any other class), so ``features["class"].int2str`` gives the name and the
number is the WebDataset export's ``.cls``.

The card (``README.md``) carries the licence, the citation, the splits with
their counts and the zero-shot rule.
Written with pyarrow only; ``datasets`` is needed to read, not to write.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from builder.export.about import (
    AUDIOSET_CITATION,
    CITATION,
    MEDIA_RIGHTS,
    METADATA_LICENSE_ID,
    ZERO_SHOT_RULE,
    class_names,
)
from builder.export.samples import ExportReport, Sample, file_bytes, iter_progress, mask_png, shards_by_split
from builder.io.atomic import atomic_open, atomic_write_text
from builder.manifest.membership import sha256_file

ROWS_PER_GROUP = 64
MEDIA = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
TEXT_COLUMNS = ("clip_id", "ytid", "mid", "split", "source", "labels", "curation")
FLOAT_COLUMNS = ("start", "end", "window_offset", "window_seconds", "frame_time")
SCHEMA = pa.schema(
    [(name, pa.string()) for name in TEXT_COLUMNS[:2]] + [("class", pa.int64())]
    + [(name, pa.string()) for name in TEXT_COLUMNS[2:]]
    + [(name, pa.float64()) for name in FLOAT_COLUMNS]
    + [("has_mask", pa.bool_()), ("audio", MEDIA), ("image", MEDIA), ("image_full", MEDIA), ("mask", MEDIA)])
CARD_TITLE = "INSTRUMENT-32CLASS rebuild (llinet export)"


def features(names: list[str]) -> dict[str, dict]:
    """The ``datasets`` feature types, in column order."""
    out: dict[str, dict] = {}
    for field in SCHEMA:
        if field.name == "class":
            out["class"] = {"names": names, "_type": "ClassLabel"}
        elif field.name in FLOAT_COLUMNS:
            out[field.name] = {"dtype": "float64", "_type": "Value"}
        elif field.name == "has_mask":
            out["has_mask"] = {"dtype": "bool", "_type": "Value"}
        elif field.name == "audio":
            out["audio"] = {"_type": "Audio"}
        elif field.type == MEDIA:
            out[field.name] = {"_type": "Image"}
        else:
            out[field.name] = {"dtype": "string", "_type": "Value"}
    return out


def _schema(names: list[str]) -> pa.Schema:
    return SCHEMA.with_metadata({"huggingface": json.dumps({"info": {"features": features(names)}},
                                                           sort_keys=True)})


def sample_row(sample: Sample, class_index: dict[str, int]) -> dict:
    meta = sample.metadata()
    row: dict[str, object] = {name: (None if meta.get(name) is None else str(meta[name])) for name in TEXT_COLUMNS}
    row["class"] = class_index[sample.class_name]
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
    names = class_names(s.class_name for s in samples)
    class_index = {name: i for i, name in enumerate(names)}
    schema = _schema(names)
    configs = []
    for split, shards in shards_by_split(samples, shard_size).items():
        for number, shard in enumerate(iter_progress(shards, f"hf {split}", progress)):
            rel = f"data/{split}-{number:05d}-of-{len(shards):05d}.parquet"
            with atomic_open(out / rel, "wb") as handle:
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
                for start in range(0, len(shard), ROWS_PER_GROUP):
                    rows = [sample_row(s, class_index) for s in shard[start:start + ROWS_PER_GROUP]]
                    writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                writer.close()
            report.masks += sum(s.has_mask for s in shard)
            report.files.append(rel)
            report.checksums[rel] = {"sha256": sha256_file(out / rel), "bytes": (out / rel).stat().st_size}
        configs.append(f"  - split: {split}\n    path: data/{split}-*.parquet")
    atomic_write_text(out / "README.md", dataset_card(samples, names, configs))
    report.files.append("README.md")


def dataset_card(samples: list[Sample], names: list[str], configs: list[str]) -> str:
    """The Hugging Face dataset card: YAML header (licence, splits' files) and what a user must know."""
    splits: dict[str, list[Sample]] = {}
    for sample in samples:
        splits.setdefault(sample.split, []).append(sample)
    header = ["---", f"license: {METADATA_LICENSE_ID}", f"pretty_name: \"{CARD_TITLE}\"",
              "task_categories:", "- zero-shot-image-classification", "- audio-classification",
              "- image-segmentation", "tags:", "- audio-visual", "- zero-shot", "- audioset", "- musical-instruments",
              "configs:", "- config_name: default", "  data_files:", *configs, "---"]
    split_rows = [f"| {split} | {len(group)} | {len({s.class_name for s in group})} | "
                  f"{sum(s.has_mask for s in group)} |" for split, group in sorted(splits.items())]
    present: dict[str, set[str]] = {}
    for sample in samples:
        present.setdefault(sample.class_name, set()).add(sample.split)
    class_rows = [f"| {i} | {name} | {', '.join(sorted(present.get(name, ()))) or '(none in this build)'} |"
                  for i, name in enumerate(names)]
    body = [
        f"# {CARD_TITLE}", "",
        "Audio-visual zero-shot learning data rebuilt from AudioSet: per clip a 3 s audio window (`audio`), "
        "the centre-square video frame (`image`), the full frame (`image_full`) and, for annotated "
        "unseen-class clips, the binary mask of the sounding instrument on the square frame (`mask`, PNG "
        "0/255). `class` is a `ClassLabel`; the other columns give the YouTube id, the AudioSet segment "
        "times and the window offset.", "",
        "## Splits", "", "| split | clips | classes | masks |", "|---|---:|---:|---:|", *split_rows, "",
        "## Zero-shot rule", "", ZERO_SHOT_RULE, "",
        "## Classes", "", "`class` index, name and the splits it occurs in here:", "",
        "| index | class | splits |", "|---:|---|---|", *class_rows, "",
        "## Loading", "", "```python", "import datasets", "ds = datasets.load_dataset(\"path/to/this/folder\")",
        "row = ds[\"train\"][0]", "print(ds[\"train\"].features[\"class\"].int2str(row[\"class\"]), "
        "row[\"image\"].size)", "```", "",
        "## Licence", "", MEDIA_RIGHTS, "",
        "## Citation", "", "```bibtex", CITATION, "", AUDIOSET_CITATION, "```", ""]
    return "\n".join(header + [""] + body)
