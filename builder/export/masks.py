"""Read segmentation masks from a COCO instance-annotation file (``annotate``'s output).

Only what the exports need, read defensively so that a COCO file from another
tool works too:

* images: ``id``, ``width``, ``height`` and the clip they belong to -- the
  ``clip_id`` field when present, else the stem of ``file_name``;
* annotations: ``image_id``, ``category_id`` and ``segmentation`` as
  compressed RLE (``counts`` a string), uncompressed RLE (``counts`` a list)
  or polygons; decoded by :func:`builder.annotate.coco.decode_segmentation`
  (pycocotools). Several annotations of one image are
  merged (union) into one binary mask: the official layout has one segment
  image per frame;
* categories: ``id`` and ``name`` (the class), optionally an AudioSet MID in
  ``mid`` / ``audioset_mid``.

A mask's size must be the released square frame's (``frame_size``) or the
full frame's (``frame_width`` x ``frame_height``); a full-frame mask is cut to
the centred square exactly as ``frames`` cuts the image.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from builder.errors import InputError, read_json_file
from builder.manifest.ids import CLIP_ID_RE


@dataclass
class MaskIndex:
    path: Path
    images: dict[str, dict] = field(default_factory=dict)          # clip_id -> image record
    annotations: dict[int, list[dict]] = field(default_factory=dict)  # image id -> annotations
    categories: dict[int, dict] = field(default_factory=dict)

    def __contains__(self, clip_id: str) -> bool:
        image = self.images.get(clip_id)
        return image is not None and bool(self.annotations.get(image["id"]))

    def category_names(self, clip_id: str) -> set[str]:
        image = self.images[clip_id]
        return {str(self.categories[a["category_id"]].get("name", "")) for a in self.annotations[image["id"]]}

    def mask(self, clip_id: str) -> np.ndarray:
        """The union of the clip's annotations as a bool array [height, width]."""
        from builder.annotate.coco import SegmentationSizeError, decode_segmentation  # pycocotools: only when needed

        image = self.images[clip_id]
        height, width = int(image["height"]), int(image["width"])
        out = np.zeros((height, width), dtype=bool)
        for ann in self.annotations[image["id"]]:
            try:
                out |= decode_segmentation(ann.get("segmentation"), width, height)
            except SegmentationSizeError as exc:
                raise InputError(f"annotation {ann.get('id')!r} of clip {clip_id}: mask is "
                                 f"{exc.width}x{exc.height}, image record says {width}x{height}",
                                 file=self.path, field="segmentation") from None
            except (ValueError, TypeError, KeyError) as exc:
                raise InputError(f"annotation {ann.get('id')!r} of clip {clip_id}: unreadable segmentation "
                                 f"({exc})", file=self.path, field="segmentation") from None
        return out


def load_masks(path: str | os.PathLike) -> MaskIndex:
    path = Path(path)
    data = read_json_file(path, "annotations file")
    if not isinstance(data, dict):
        raise InputError("expected a COCO object with images, annotations, categories", file=path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise InputError(f"COCO file has no {key!r} list", file=path, field=key)
    index = MaskIndex(path)
    by_id: dict[int, str] = {}
    for n, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not {"id", "width", "height"} <= set(image):
            raise InputError(f"images[{n}] needs id, width and height", file=path, field="images")
        clip_id = image.get("clip_id") or Path(str(image.get("file_name", ""))).stem
        if not isinstance(clip_id, str) or not CLIP_ID_RE.fullmatch(clip_id):
            raise InputError(f"images[{n}] (id {image['id']!r}): no valid clip id in 'clip_id' or "
                             f"'file_name' ({clip_id!r})", file=path, field="clip_id")
        if clip_id in index.images:
            raise InputError(f"images[{n}]: clip {clip_id} has two image records", file=path, field="clip_id")
        if image["id"] in by_id:
            raise InputError(f"images[{n}]: duplicate image id {image['id']!r}", file=path, field="id")
        index.images[clip_id] = image
        by_id[image["id"]] = clip_id
    for n, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            raise InputError(f"categories[{n}] needs id and name", file=path, field="categories")
        index.categories[category["id"]] = category
    for n, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "category_id" not in ann:
            raise InputError(f"annotations[{n}] needs image_id and category_id", file=path, field="annotations")
        if ann["image_id"] not in by_id:
            raise InputError(f"annotations[{n}]: unknown image_id {ann['image_id']!r}", file=path,
                             field="image_id")
        if ann["category_id"] not in index.categories:
            raise InputError(f"annotations[{n}]: unknown category_id {ann['category_id']!r}", file=path,
                             field="category_id")
        index.annotations.setdefault(ann["image_id"], []).append(ann)
    return index


def mask_for_frame(index: MaskIndex, clip_id: str, class_name: str, square: int,
                   full_size: tuple[int, int] | None) -> np.ndarray:
    """The clip's mask on the released square frame ([square, square] bool).

    ``full_size`` is (width, height) of the uncropped frame when known.
    """
    names = index.category_names(clip_id)
    if names != {class_name}:
        raise InputError(f"clip {clip_id} is a {class_name!r} clip but its mask is labelled {sorted(names)}",
                         file=index.path, field="category_id")
    mask = index.mask(clip_id)
    height, width = mask.shape
    if (height, width) == (square, square):
        return mask
    if full_size is not None and (width, height) == tuple(full_size):
        top, left = (height - square) // 2, (width - square) // 2
        return mask[top:top + square, left:left + square]
    expected = f"{square}x{square}" + (f" or {full_size[0]}x{full_size[1]}" if full_size else "")
    raise InputError(f"clip {clip_id}: mask is {width}x{height}, the frame is {expected}", file=index.path,
                     field="width")
