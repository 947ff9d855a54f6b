"""`annotate preview`: a contact sheet of frames with their masks overlaid (PIL, PNG).

Each tile is the square frame scaled to ``tile`` pixels with every instance
mask tinted in its own colour at ``alpha`` opacity and outlined, and a caption
(class, clip id). A masked-split clip without a mask shows its bare frame and
"no mask" (so gaps are visible). A missing frame is an error naming it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from builder.annotate.coco import AnnotationContext, masks_for_clip
from builder.errors import InputError
from builder.io.atomic import atomic_open

PALETTE = ((255, 40, 40), (40, 200, 255), (255, 210, 0), (120, 255, 80), (255, 80, 220), (255, 140, 0))
CAPTION = 30


@dataclass
class SheetReport:
    path: Path
    tiles: int
    with_mask: int


def overlay(frame: np.ndarray, masks: list[np.ndarray], alpha: float = 0.45) -> np.ndarray:
    """RGB uint8 frame with each mask tinted (its own colour) and outlined."""
    out = frame.astype(np.float32)
    for i, mask in enumerate(masks):
        colour = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
        out[_edge(mask)] = colour
    return out.clip(0, 255).astype(np.uint8)


def _edge(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a background 4-neighbour (or on the image border)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def contact_sheet(coco: dict, context: AnnotationContext, clip_ids: list[str], out_path: str | os.PathLike, *,
                  columns: int = 6, tile: int = 192, alpha: float = 0.45) -> SheetReport:
    """Write the sheet for ``clip_ids`` (in the given order) as PNG; returns what it drew."""
    if not clip_ids:
        raise InputError("nothing to preview: no clips selected")
    root = context.root
    if root is None:
        raise InputError("a preview needs the media root (the frames)")
    if columns < 1 or tile < 32:
        raise InputError(f"columns must be >= 1 and tile >= 32 px, got {columns} and {tile}")
    font = ImageFont.load_default()
    rows = (len(clip_ids) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * (tile + CAPTION)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    with_mask = 0
    for n, clip_id in enumerate(clip_ids):
        x, y = (n % columns) * tile, (n // columns) * (tile + CAPTION)
        target = context.target(clip_id)      # checks the clip and that its frame exists
        with Image.open(root / target.file_name) as image:
            frame = np.array(image.convert("RGB"))
        masks = masks_for_clip(coco, clip_id)
        if any(m.shape != frame.shape[:2] for m in masks):
            raise InputError(f"clip {clip_id!r}: mask size differs from its frame {target.file_name}")
        sheet.paste(_fit(Image.fromarray(overlay(frame, masks, alpha)), tile), (x, y))
        with_mask += bool(masks)
        note = f"{len(masks)} mask{'s' if len(masks) != 1 else ''}" if masks else "no mask"
        draw.text((x + 4, y + tile + 2), f"{target.class_name} ({note})", fill=(235, 235, 235), font=font)
        draw.text((x + 4, y + tile + 15), clip_id, fill=(170, 170, 170), font=font)
    out_path = Path(out_path)
    with atomic_open(out_path, "wb") as handle:
        sheet.save(handle, format="PNG")
    return SheetReport(out_path, len(clip_ids), with_mask)


def _fit(image: Image.Image, tile: int) -> Image.Image:
    """Scale to fit a tile x tile square, centred on black (frames are square; full frames are not)."""
    scale = tile / max(image.size)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (tile, tile), (0, 0, 0))
    canvas.paste(resized, ((tile - resized.width) // 2, (tile - resized.height) // 2))
    return canvas
