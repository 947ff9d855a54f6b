"""A small built dataset made from numpy, for the export / release / verify tests and benches.

It looks like the output of ``fetch`` -> ``trim`` -> ``frames`` (-> ``curate``,
``annotate``): a media root with ``audio/<clip>.wav``, ``frames/<clip>.jpg``
(square), ``frames_full/<clip>.jpg``, the stages' status logs, a manifest with
the media contract's columns and a COCO file with masks for the test clips.

Content is built to make verification meaningful: each clip's 10 s "source"
audio is a seeded sequence of 0.2 s notes over noise (so a window taken at
another offset really differs), and each frame shows seeded shapes that move
with time. :func:`source_audio` and :func:`render_frame` regenerate any
offset, which the tests use for time-shifted copies.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from builder.io.atomic import atomic_write_bytes, atomic_write_json
from builder.io.status_log import StatusLog
from builder.manifest.media_root import AUDIO_DIR, CLIPS_DIR, FRAMES_DIR, FRAMES_FULL_DIR, MediaRoot

TRAIN_CLASSES = (("Accordion", "/m/0mkg"), ("Banjo", "/m/018j2"), ("Piano", "/m/05r5c"))
TEST_CLASSES = (("Tabla", "/m/01p970"), ("Shofar", "/m/0l14l2"))
NOTE_SECONDS = 0.2


@dataclass(frozen=True)
class SynthDataset:
    root: Path
    manifest_path: Path
    annotations: Path
    manifest: pd.DataFrame


def clip_seed(clip_id: str) -> int:
    return zlib.crc32(clip_id.encode())


def source_audio(seed: int, seconds: float, rate: int, channels: int = 2) -> np.ndarray:
    """[samples, channels] float32: seeded notes (one every 0.2 s) over quiet noise."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    notes = rng.uniform(150.0, 3000.0, size=int(np.ceil(seconds / NOTE_SECONDS)) + 1)
    loud = rng.uniform(0.1, 0.6, size=notes.size)
    idx = (t // NOTE_SECONDS).astype(int)
    phase = 2 * np.pi * np.cumsum(notes[idx]) / rate
    envelope = loud[idx] * np.exp(-3.0 * (t % NOTE_SECONDS))
    mono = envelope * np.sin(phase) + 0.02 * rng.standard_normal(n)
    out = np.stack([mono * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
    return np.clip(out, -1, 1).astype(np.float32)


def render_frame(seed: int, time: float, width: int, height: int) -> np.ndarray:
    """[height, width, 3] uint8: gradient background and three discs moving with ``time``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(30, 200, size=3)
    img = np.stack([base[c] + 40 * np.sin(xx / width * 3 + c) * np.cos(yy / height * 2) for c in range(3)], axis=2)
    for _ in range(3):
        colour = rng.uniform(0, 255, size=3)
        cx0, cy0 = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        vx, vy = rng.uniform(-0.25, 0.25, size=2) * width
        radius = rng.uniform(0.1, 0.25) * height
        cx, cy = (cx0 + vx * time) % width, (cy0 + vy * time) % height
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2] = colour
    return np.clip(img, 0, 255).astype(np.uint8)


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    import io

    import soundfile
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    atomic_write_bytes(path, buffer.getvalue())


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    import io

    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    atomic_write_bytes(path, buffer.getvalue())


def make_dataset(root: Path, per_class: int = 3, rate: int = 16000, window: float = 3.0,
                 frame_height: int = 96, frame_width: int = 128, unavailable: int = 1,
                 curation: bool = True) -> SynthDataset:
    """Write a small built dataset under ``root``; returns its paths and manifest.

    Per class ``per_class`` clips are built; additionally ``unavailable`` clips
    per class are recorded as unavailable at fetch time (no media). With
    ``curation`` the manifest has curate's columns: unavailable clips are
    auto-rejected, the first built clip of the first class is accepted by a
    reviewer and its last built clip rejected.
    """
    root = Path(root)
    layout = MediaRoot(root)
    rows = []
    fetch_log = StatusLog(layout.status_log("fetch"), fsync=False)
    trim_log = StatusLog(layout.status_log("trim"), fsync=False)
    frames_log = StatusLog(layout.status_log("frames"), fsync=False)
    trim_params = {"mono": False, "policy": "first", "sample_rate": rate, "silence_dbfs": -60.0, "window": window}
    frame_params = {"dark_luma": 16.0, "frames_per_clip": 1, "jpeg_quality": 95, "uniform_std": 4.0}
    side = min(frame_height, frame_width)
    n = 0
    for split, classes in (("train", TRAIN_CLASSES), ("test", TEST_CLASSES)):
        for name, mid in classes:
            for k in range(per_class + unavailable):
                n += 1
                ytid = f"syn{n:08d}"
                start = float(30 * k)
                clip_id = f"{ytid}_{int(start * 1000)}"
                ok = k < per_class
                row = {"clip_id": clip_id, "ytid": ytid, "start": start, "end": start + 10.0, "class": name,
                       "mid": mid, "split": split, "source": "synthetic", "labels": mid, "rank": k,
                       "selected": True, "fetch_status": "ok" if ok else "unavailable",
                       "fetch_error": "" if ok else "video_unavailable", "media_path": ""}
                fetch_log.append({"clip_id": clip_id, "status": row["fetch_status"], "run_id": "synthrun0001",
                                  "time": f"2026-01-0{1 + k % 3}T12:00:00Z"})
                if ok:
                    seed = clip_seed(clip_id)
                    audio_rel, frame_rel, full_rel = (f"{AUDIO_DIR}/{clip_id}.wav", f"{FRAMES_DIR}/{clip_id}.jpg",
                                                      f"{FRAMES_FULL_DIR}/{clip_id}.jpg")
                    write_wav(root / audio_rel, source_audio(seed, window, rate), rate)
                    full = render_frame(seed, window / 2, frame_width, frame_height)
                    top, left = (frame_height - side) // 2, (frame_width - side) // 2
                    write_jpeg(root / full_rel, full)
                    write_jpeg(root / frame_rel, full[top:top + side, left:left + side])
                    row.update(media_path=f"{CLIPS_DIR}/{clip_id}.mp4", media_duration=10.0, trim_status="ok",
                               trim_flags="", audio_path=audio_rel, window_offset=0.0, window_seconds=window,
                               frames_status="ok", frame_flags="", frame_path=frame_rel, frame_full_path=full_rel,
                               frame_time=window / 2, frame_width=frame_width, frame_height=frame_height,
                               frame_size=side)
                    trim_log.append({"clip_id": clip_id, "status": "ok", "params": trim_params,
                                     "audio_path": audio_rel, "time": "2026-01-04T12:00:00Z"})
                    frames_log.append({"clip_id": clip_id, "status": "ok", "params": frame_params,
                                       "frame_path": frame_rel, "time": "2026-01-04T12:30:00Z"})
                rows.append(row)
    manifest = pd.DataFrame(rows)
    for column in ("trim_status", "trim_flags", "audio_path", "frames_status", "frame_flags", "frame_path",
                   "frame_full_path"):
        manifest[column] = manifest[column].fillna("").astype(object)
    if curation:
        # curate's columns (builder/curate/stage.py): decisions, reasons, outcome, and `selected` re-capped
        fetched = manifest["fetch_status"] == "ok"
        manifest["curation"] = ["undecided" if s else "auto_rejected" for s in fetched]
        manifest["curation_reason"] = ["" if s else "auto: unavailable" for s in fetched]
        manifest["curation_outcome"] = ["selected" if s else "rejected" for s in fetched]
        first = manifest.index[(manifest["class"] == TRAIN_CLASSES[0][0]) & fetched]
        manifest.loc[first[0], "curation"] = "accepted"
        rejected: dict[str, str | bool] = {"curation": "rejected", "curation_reason": "not solo playing",
                                           "curation_outcome": "rejected", "selected": False}
        for column, value in rejected.items():
            manifest.loc[first[-1], column] = value
    from builder.manifest.schema import write_manifest
    manifest_path = write_manifest(manifest, layout.manifest)
    annotations = layout.annotations
    atomic_write_json(annotations, coco_for(manifest, side))
    return SynthDataset(root, manifest_path, annotations, manifest)


def disc_mask(seed: int, side: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    yy, xx = np.mgrid[0:side, 0:side]
    cx, cy, r = rng.uniform(0.3, 0.7) * side, rng.uniform(0.3, 0.7) * side, rng.uniform(0.15, 0.3) * side
    return ((xx - cx) ** 2 + (yy - cy) ** 2) < r ** 2


def coco_for(manifest: pd.DataFrame, side: int) -> dict:
    """COCO instance annotations (RLE) for every built test clip, on the square frame."""
    from pycocotools import mask as mask_utils

    classes = list(TRAIN_CLASSES + TEST_CLASSES)
    categories = [{"id": i + 1, "name": name, "mid": mid, "supercategory": "instrument"}
                  for i, (name, mid) in enumerate(classes)]
    category_id = {c["name"]: c["id"] for c in categories}
    images: list[dict] = []
    annotations: list[dict] = []
    built = manifest[(manifest["split"] == "test") & (manifest["fetch_status"] == "ok")]
    for row in built.to_dict("records"):
        image_id = len(images) + 1
        images.append({"id": image_id, "clip_id": row["clip_id"], "file_name": f"{row['clip_id']}.jpg",
                       "width": side, "height": side})
        mask = disc_mask(clip_seed(row["clip_id"]), side)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        annotations.append({"id": image_id, "image_id": image_id, "category_id": category_id[row["class"]],
                            "segmentation": {"size": [side, side], "counts": rle["counts"].decode("ascii")},
                            "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                            "iscrowd": 0})
    return {"info": {"description": "synthetic masks"}, "images": images, "annotations": annotations,
            "categories": categories}

