"""Ground-truth masks: COCO annotations (via pycocotools) to the protocols' grids.

The model sees a frame resized so its short side is 244 and centre-cropped to
a square, so a mask is first centre-cropped to a square the same way, then
shrunk:

* 16x16 for the LLINet protocol with PIL's default (antialiased bicubic)
  resize and ``> 0`` -- what the official loader does with ``Image.resize``;
* 224x224 for the LVS protocol with bilinear resize, a pixel counting as
  foreground when at least half covered.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from builder.errors import InputError, read_json_file


def _image_key(image: dict[str, Any]) -> str:
    """The clip id an image entry belongs to: ``clip_id`` field, else the file stem."""
    if image.get("clip_id"):
        return str(image["clip_id"])
    if image.get("file_name"):
        return Path(str(image["file_name"])).stem
    return str(image["id"])


def decode_coco_masks(source: str | os.PathLike | dict[str, Any]) -> dict[str, np.ndarray]:
    """Map clip id -> boolean (H, W) mask: the union of that image's annotations."""
    # Imported here: GPU machines that only extract embeddings may lack pycocotools.
    from builder.annotate.coco import decode_segmentation

    if isinstance(source, dict):
        path, data = None, source
    else:
        path = Path(source)
        data = read_json_file(path, "COCO annotation file")
    where = path if path is not None else "<COCO annotations>"
    if not isinstance(data, dict):
        raise InputError(f"COCO annotations must be a JSON object, got {type(data).__name__}", file=where)
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise InputError(f"COCO annotations need a list {key!r}", file=where, field=key)
    images = {}
    for image in data["images"]:
        try:
            images[image["id"]] = (_image_key(image), int(image["height"]), int(image["width"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"image entry {image!r} lacks id/height/width", file=where,
                             field="images") from exc
    masks: dict[str, np.ndarray] = {}
    for index, annotation in enumerate(data["annotations"]):
        image_id = annotation.get("image_id")
        if image_id not in images:
            raise InputError(f"annotation {index} refers to unknown image_id {image_id!r}",
                             file=where, field="annotations")
        key, height, width = images[image_id]
        try:   # the decoder also refuses an RLE whose size is not the image's
            decoded = decode_segmentation(annotation["segmentation"], width, height)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"annotation {index}: cannot decode segmentation ({exc})",
                             file=where, field="segmentation") from exc
        masks[key] = masks[key] | decoded if key in masks else decoded
    return masks


def center_square(mask: np.ndarray) -> np.ndarray:
    """Central square crop, as the test transform (resize short side, centre crop)."""
    height, width = mask.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return mask[top:top + side, left:left + side]


def mask_to_grid(mask: np.ndarray, size: int = 16) -> np.ndarray:
    """LLINet protocol mask: square crop, PIL bicubic resize to size x size, ``> 0``."""
    image = Image.fromarray(center_square(np.asarray(mask, dtype=bool)).astype(np.uint8) * 255)
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC)) > 0


def mask_to_square(mask: np.ndarray, size: int = 224) -> np.ndarray:
    """LVS protocol mask: square crop, bilinear resize, foreground where >= half covered."""
    image = Image.fromarray(center_square(np.asarray(mask, dtype=bool)).astype(np.uint8) * 255)
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)) >= 128
