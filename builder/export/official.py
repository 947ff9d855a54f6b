"""The authors' INSTRUMENT-32CLASS folder layout, read by their public loader unchanged.

What the official code (LLINet/LLINet ``code/dataloaders/dataset.py``, read
for understanding) expects, and how this export provides it:

* ``--data_path`` points at ``traindata/``; the six index files sit in it.
* ``{train,test}_image_files.pickle``: lists of image keys relative to
  ``traindata/``, ``<split>/<Class>/video/<Class>NNNNN.jpg``; the loader takes
  the class folder name from the key's second component.
* ``{train,test}_class_ids.pickle``: one int per image key. Ids are
  positions in the name-sorted class list of that split (train 0..23, test
  0..7); the official code uses them only to group same-class items.
* ``train_audio_files.pickle``: a dict ``class folder -> list of audio keys``
  (training pairs each image with a random audio of its class);
  ``test_audio_files.pickle``: a list aligned with the test image keys (each
  image with its own clip's audio). Audio keys are
  ``<split>/<Class>/sound/<Class>NNNNN.wav`` (the loader swaps the last four
  characters for ``.wav``).
* Test items are read with their segment: the loader replaces ``video`` with
  ``segment`` in the image path, so ``test/<Class>/segment/<Class>NNNNN.jpg``
  is the mask, a grayscale 0/255 JPEG the size of the frame. A class name
  containing ``video`` would break that rule and is refused; keep the word out
  of the ``--data_path`` too.
* The authors' README: ``test/`` holds the centre-square (cropped) images for
  sound localisation, ``test_without_seg/`` the original images for retrieval
  and recognition. Here ``test/`` holds the test clips that have a mask
  (square frame + mask), ``test_without_seg/`` every test clip with its full
  frame (the square one when no full frame was kept). The test pickles index
  ``test/``, because the loader opens a segment for every test item.

Only the ``train`` and ``test`` splits have a place in this layout; clips of
other splits (``val_seen``, ``val_unseen``, ``test_seen``) are counted in the
report and left out. File stems are ``<Class><5-digit index>`` numbered from
1 per class in clip order (rank, then clip id); ``export_index.csv`` maps each
stem back to its clip id. Every file's SHA-256 and size go into the export
report (``checksums``), which ``verify`` checks the folder against.
"""
from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.export.samples import ExportReport, Sample, file_bytes, iter_progress, mask_jpeg
from builder.io.atomic import atomic_open, atomic_write_bytes
from builder.manifest.membership import sha256_file

DATA_DIR = "traindata"
INDEX_FILE = "export_index.csv"
PICKLE_PROTOCOL = 2        # readable by the Python 2/3.6 environments the official code targets


def check_class_folder(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InputError(f"class name {name!r} cannot be a folder name", field="class")
    if "video" in name:
        raise InputError(f"class name {name!r} contains 'video': the official loader finds a test mask by "
                         "replacing 'video' with 'segment' in the image path", field="class")
    return name


def write_llinet(samples: list[Sample], out: Path, report: ExportReport, progress: bool = True) -> None:
    data = out / DATA_DIR
    placed = [s for s in samples if s.split in ("train", "test")]
    for sample in samples:
        if sample.split not in ("train", "test"):
            report.skipped_splits[sample.split] = report.skipped_splits.get(sample.split, 0) + 1
    if report.skipped_splits:
        report.notes.append("the official layout has only train and test; left out: "
                            + ", ".join(f"{k} {v}" for k, v in sorted(report.skipped_splits.items())))
    class_ids = {split: {name: i for i, name in enumerate(sorted({s.class_name for s in placed
                                                                  if s.split == split}))}
                 for split in ("train", "test")}
    numbers: dict[str, int] = {}
    index_rows = []
    train_images, train_ids = [], []
    train_audio: dict[str, list[str]] = {}
    test_images, test_ids, test_audio = [], [], []
    unsegmented = 0
    for sample in iter_progress(placed, "export llinet", progress):
        name = check_class_folder(sample.class_name)
        numbers[name] = numbers.get(name, 0) + 1
        stem = f"{name}{numbers[name]:05d}"
        split = sample.split
        class_id = class_ids[split][name]
        audio_key = f"{split}/{name}/sound/{stem}.wav"
        image_key = f"{split}/{name}/video/{stem}.jpg"
        row = {"clip_id": sample.clip_id, "split": split, "class": name, "class_id": class_id, "stem": stem,
               "audio": "", "image": "", "segment": "", "image_without_seg": "", "audio_without_seg": ""}
        if split == "train":
            _put(data / audio_key, sample.audio, report, out)
            _put(data / image_key, sample.frame, report, out)
            train_images.append(image_key)
            train_ids.append(class_id)
            train_audio.setdefault(name, []).append(audio_key)
            row.update(audio=audio_key, image=image_key)
        else:
            plain_audio = f"test_without_seg/{name}/sound/{stem}.wav"
            plain_image = f"test_without_seg/{name}/video/{stem}.jpg"
            _put(data / plain_audio, sample.audio, report, out)
            _put(data / plain_image, sample.frame_full or sample.frame, report, out)
            row.update(audio_without_seg=plain_audio, image_without_seg=plain_image)
            mask = sample.mask()
            if mask is None:
                unsegmented += 1
            else:
                segment_key = image_key.replace("video", "segment")
                _put(data / audio_key, sample.audio, report, out)
                _put(data / image_key, sample.frame, report, out)
                _put_bytes(data / segment_key, mask_jpeg(mask), report, out)
                report.masks += 1
                test_images.append(image_key)
                test_ids.append(class_id)
                test_audio.append(audio_key)
                row.update(audio=audio_key, image=image_key, segment=segment_key)
        index_rows.append(row)
    if unsegmented:
        report.notes.append(f"{unsegmented} test clip(s) have no mask: they are in test_without_seg/ only, "
                            "not in test/ or the test pickles")
    indexes = {
        "train_image_files": train_images, "train_class_ids": train_ids,
        "train_audio_files": {k: train_audio[k] for k in sorted(train_audio, key=class_ids["train"].__getitem__)},
        "test_image_files": test_images, "test_class_ids": test_ids, "test_audio_files": test_audio,
    }
    for name, obj in sorted(indexes.items()):
        # Pickle is the official loader's index format; this export is the one place we write it
        # (plain lists/dicts of str and int only). We never load pickles from outside.
        _put_bytes(data / f"{name}.pickle", pickle.dumps(obj, protocol=PICKLE_PROTOCOL), report, out)
    buffer = io.StringIO()
    pd.DataFrame(index_rows, columns=["clip_id", "split", "class", "class_id", "stem", "audio", "image",
                                      "segment", "audio_without_seg", "image_without_seg"]) \
        .to_csv(buffer, index=False, lineterminator="\n")
    _put_bytes(out / INDEX_FILE, buffer.getvalue().encode("utf-8"), report, out)


def _put(dest: Path, src: Path, report: ExportReport, out: Path) -> None:
    """Copy ``src`` to ``dest`` atomically unless ``dest`` already holds the same bytes."""
    rel = dest.relative_to(out).as_posix()
    report.files.append(rel)
    report.checksums[rel] = {"sha256": sha256_file(src), "bytes": src.stat().st_size}
    if dest.is_file() and dest.stat().st_size == src.stat().st_size and file_bytes(dest) == file_bytes(src):
        return
    with open(src, "rb") as reader, atomic_open(dest, "wb") as writer:
        while block := reader.read(1 << 20):
            writer.write(block)


def _put_bytes(dest: Path, data: bytes, report: ExportReport, out: Path) -> None:
    rel = dest.relative_to(out).as_posix()
    report.files.append(rel)
    report.checksums[rel] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if dest.is_file() and dest.stat().st_size == len(data) and file_bytes(dest) == data:
        return
    atomic_write_bytes(dest, data)
