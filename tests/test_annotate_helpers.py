"""Shared builders for the annotate tests (no tests here): a small media root with square JPEG frames
and a post-frames manifest, written the way the media stages write them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from builder.manifest.ids import make_clip_id
from builder.manifest.schema import write_manifest

# (name, class, mid, split, frame side, selected); classes and MIDs are the committed INSTRUMENT-32 ones.
CLIPS = {
    "tabla": ("Tabla", "/m/01p970", "test", 48, True),
    "didgeridoo": ("Didgeridoo", "/m/02bxd", "test", 40, True),
    "drum": ("Drum", "/m/026t6", "train", 32, True),
    "shofar": ("Shofar", "/m/0l14l2", "val_unseen", 36, True),
    "tabla_reserve": ("Tabla", "/m/01p970", "test", 48, False),
    "tabla_noframe": ("Tabla", "/m/01p970", "test", 0, True),
}


def clip_id(name: str) -> str:
    index = list(CLIPS).index(name)
    return make_clip_id(f"{name[:5]:_<5}{index:06d}", 10.0)


def build_root(root: Path) -> tuple[pd.DataFrame, Path]:
    """Frames under root/frames, the manifest at root/manifest.csv; returns (manifest, path)."""
    rows = []
    for rank, (name, (cls, mid, split, side, selected)) in enumerate(CLIPS.items()):
        cid = clip_id(name)
        frame_path = ""
        if side:
            frame_path = f"frames/{cid}.jpg"
            (root / "frames").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((side, side, 3), 128, dtype=np.uint8)).save(root / frame_path, quality=95)
        rows.append({"clip_id": cid, "ytid": cid[:11], "start": 10.0, "end": 20.0, "class": cls, "mid": mid,
                     "split": split, "source": "eval", "labels": mid, "rank": rank, "selected": selected,
                     "fetch_status": "ok", "media_path": f"clips/{cid}.mp4", "trim_status": "ok",
                     "trim_flags": "", "frames_status": "ok" if side else "error", "frame_flags": "",
                     "frame_path": frame_path, "frame_full_path": frame_path.replace("frames/", "frames_full/"),
                     "frame_size": side or "", "frame_width": side or "", "frame_height": side or ""})
    manifest = pd.DataFrame(rows)
    path = write_manifest(manifest, root / "manifest.csv")
    return manifest, path


def box(side: int, top: int, left: int, bottom: int, right: int, width: int | None = None) -> np.ndarray:
    """Boolean [side, width or side] mask with rows top..bottom-1, columns left..right-1 set."""
    mask = np.zeros((side, width or side), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def save_mask(path: Path, mask: np.ndarray, *, mode: str = "L", scale: int = 255, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8) * scale)
    if mode != "L":
        image = image.convert(mode)
    image.save(path, **kwargs)
    return path


def uncompressed_rle(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE, computed by hand: run lengths over the column-major pixels, zeros first."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for value in flat:
        if value == current:
            run += 1
        else:
            counts.append(run)
            current, run = value, 1
    counts.append(run)
    return counts
