"""Instrument masks of the masked splits as COCO instance annotations (the library the CLI and the review page use).

File (``annotations.json``), COCO instance format:

* ``categories``: one per class of the class list (ids 1..N in list order) with
  ``name``, ``supercategory`` ("musical instrument"), ``mid`` (AudioSet MID) and
  ``split`` (train = seen / test = unseen).
* ``images``: one per annotated clip: ``id`` = :func:`image_id_for_clip` (a
  stable hash of the clip id, so files made independently merge without
  renumbering), ``clip_id``, ``file_name`` (the square frame, ``frame_path``
  relative to the media root), ``width``, ``height``, ``class``, ``split``.
* ``annotations``: ``segmentation`` = compressed RLE from pycocotools with
  ``counts`` as an ASCII string, ``area`` and ``bbox`` ([x, y, w, h]) from
  pycocotools, ``iscrowd`` 0 (each mask is one instrument instance).

Masks belong to the ``test`` and ``val_unseen`` splits (:data:`MASKED_SPLITS`):
localisation is measured on unseen classes, and validation-unseen masks let
thresholds be tuned without touching test. Masks are drawn on the square frame
(``frame_path``) the model reads, like the authors' ``segment/*.jpg``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from builder import __version__
from builder.audioset.classes import TargetClass
from builder.curate.decisions import locked
from builder.errors import InputError, LlinetError, read_json_file
from builder.fetch.quota import parse_bool
from builder.io.atomic import atomic_write_text
from builder.manifest.media_root import ANNOTATIONS as ANNOTATIONS_FILE  # noqa: F401 - re-exported API

MASKED_SPLITS = ("test", "val_unseen")
SUPERCATEGORY = "musical instrument"


def norm_name(text: str) -> str:
    """Case/space/punctuation-insensitive class key ('Double bass' == 'double_bass')."""
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


# --------------------------------------------------------------------------- categories and targets
def categories_from_classes(classes: Iterable[TargetClass]) -> list[dict]:
    return [{"id": i, "name": c.name, "supercategory": SUPERCATEGORY, "mid": c.mid, "split": c.split}
            for i, c in enumerate(classes, start=1)]


def categories_from_manifest(manifest: pd.DataFrame) -> list[dict]:
    """Categories from the manifest's (class, mid) pairs in order of first appearance."""
    pairs = manifest[["class", "mid"]].astype(str).drop_duplicates()
    names = pairs["class"][pairs["class"].duplicated()]
    if len(names):
        raise InputError(f"class {names.iloc[0]!r} has more than one MID in the manifest", field="mid")
    return [{"id": i, "name": n, "supercategory": SUPERCATEGORY, "mid": m}
            for i, (n, m) in enumerate(zip(pairs["class"], pairs["mid"], strict=True), start=1)]


@dataclass(frozen=True)
class MaskTarget:
    """One image that may carry a mask: a clip of a masked split and its square frame."""
    clip_id: str
    class_name: str
    mid: str
    split: str
    file_name: str          # frame path relative to the media root
    width: int
    height: int
    category_id: int
    selected: bool


class AnnotationContext:
    """The manifest, media root and categories that every mask is checked against."""

    def __init__(self, manifest: pd.DataFrame, root: str | os.PathLike | None = None,
                 classes: Iterable[TargetClass] | None = None) -> None:
        self.root = Path(root) if root is not None else None
        self.categories = (categories_from_classes(classes) if classes is not None
                           else categories_from_manifest(manifest))
        self._by_key: dict[str, dict] = {}
        for cat in self.categories:
            self._by_key[norm_name(cat["name"])] = cat
            self._by_key[cat["mid"]] = cat
        for name, mid in manifest[["class", "mid"]].astype(str).drop_duplicates().itertuples(index=False):
            known = self._by_key.get(norm_name(name))
            if known is None or known["mid"] != mid:
                raise InputError(f"manifest class {name!r} ({mid}) is not in the class list "
                                 f"{[c['name'] for c in self.categories]}", field="class")
        self.rows = {str(r["clip_id"]): r for r in manifest.to_dict("records")}

    def category(self, name_or_mid: str) -> dict | None:
        return self._by_key.get(str(name_or_mid).strip()) or self._by_key.get(norm_name(name_or_mid))

    def masked_clips(self, *, selected_only: bool = True) -> list[str]:
        """Clip ids of the masked splits (sorted); by default only the final selection."""
        out = []
        for clip_id, row in self.rows.items():
            if str(row.get("split", "")) in MASKED_SPLITS and (not selected_only or _selected(row)):
                out.append(clip_id)
        return sorted(out)

    def target(self, clip_id: str, *, source: str | os.PathLike | None = None) -> MaskTarget:
        """The clip's mask target; errors name ``source`` (the file that referred to the clip)."""
        row = self.rows.get(clip_id)
        if row is None:
            raise InputError(f"clip {clip_id!r} is not in the manifest", file=source)
        split = str(row.get("split", ""))
        if split not in MASKED_SPLITS:
            raise InputError(f"clip {clip_id!r} is in split {split!r}; masks belong to the splits "
                             f"{list(MASKED_SPLITS)}", file=source)
        file_name = str(row.get("frame_path") or "").strip()
        if not file_name or file_name == "nan":
            raise InputError(f"clip {clip_id!r} has no frame (frame_path empty): run `llinet-build frames`",
                             file=source)
        if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
            raise InputError(f"frame_path {file_name!r} of clip {clip_id!r} must be relative to the media root",
                             file=source, field="frame_path")
        width, height = self._frame_size(clip_id, row, file_name, source)
        cat = self._by_key[norm_name(str(row["class"]))]  # every manifest class was checked in __init__
        return MaskTarget(clip_id, str(row["class"]), str(row["mid"]), split, file_name, width, height,
                          int(cat["id"]), _selected(row))

    def frame_path(self, target: MaskTarget) -> Path | None:
        return self.root / target.file_name if self.root is not None else None

    def _frame_size(self, clip_id: str, row: dict, file_name: str, source) -> tuple[int, int]:
        if self.root is not None:
            path = self.root / file_name
            if not path.is_file():
                raise InputError(f"frame of clip {clip_id!r} not found: {path}", file=source)
            from PIL import Image
            with Image.open(path) as image:
                return image.size
        try:
            side = int(float(row.get("frame_size", "")))
        except (TypeError, ValueError):
            raise InputError(f"clip {clip_id!r}: no media root given and no frame_size in the manifest",
                             file=source) from None
        return side, side


def _selected(row: dict) -> bool:
    try:
        return parse_bool(row.get("selected", True))
    except ValueError:
        return False


# --------------------------------------------------------------------------- masks and RLE
def image_id_for_clip(clip_id: str) -> int:
    """Stable positive 31-bit image id from the clip id (fits every tool's int32 ids)."""
    return int.from_bytes(hashlib.sha256(clip_id.encode()).digest()[:4], "big") & 0x7FFFFFFF or 1


def validate_mask(mask: Any, width: int, height: int, *, source: str | os.PathLike | None = None,
                  clip_id: str = "") -> np.ndarray:
    """A boolean [height, width] mask or an InputError naming ``source``: 2-D, frame-sized, not empty."""
    array = np.asarray(mask)
    if array.ndim != 2:
        raise InputError(f"mask{' of ' + clip_id if clip_id else ''} must be 2-D, got shape {array.shape}",
                         file=source)
    if array.shape != (height, width):
        raise InputError(f"mask is {array.shape[1]}x{array.shape[0]} (WxH) but the frame of clip {clip_id!r} is "
                         f"{width}x{height}", file=source)
    array = array.astype(bool)
    if not array.any():
        raise InputError(f"mask of clip {clip_id!r} is empty (no foreground pixel)", file=source)
    return array


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed COCO RLE with ASCII ``counts`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_area_bbox(rle: dict) -> tuple[int, list[float]]:
    coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii") if isinstance(rle["counts"], str)
             else rle["counts"]}
    return int(mask_utils.area(coded)), [float(v) for v in mask_utils.toBbox(coded)]


class SegmentationSizeError(ValueError):
    """An RLE made for another image size (``height``, ``width``: the RLE's) than the image record's."""
    def __init__(self, size: list[int], height: int, width: int) -> None:
        super().__init__(f"RLE size {size} (HxW) differs from the image's {[height, width]}")
        self.height, self.width = size


def decode_segmentation(segmentation: Any, width: int, height: int) -> np.ndarray:
    """Boolean [height, width] mask from a COCO segmentation: polygons, uncompressed or compressed RLE.

    The project's one COCO decoder (annotate, import, exports, metrics); bad input raises ValueError
    (:class:`SegmentationSizeError` for an RLE of another size), TypeError or KeyError.
    """
    if isinstance(segmentation, list):
        polygons = [list(map(float, p)) for p in segmentation]
        if not polygons or any(len(p) < 6 or len(p) % 2 for p in polygons):
            raise ValueError("a polygon needs at least 3 points (6 numbers, x/y pairs)")
        rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size = [int(v) for v in segmentation["size"]]
        if size != [height, width]:
            raise SegmentationSizeError(size, height, width)
        if isinstance(segmentation["counts"], list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            counts = segmentation["counts"]
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        raise ValueError("segmentation must be a polygon list or an RLE object with 'size' and 'counts'")
    with warnings.catch_warnings():  # pycocotools 2.0.11 vs numpy 2 copy-keyword notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


# --------------------------------------------------------------------------- the COCO document
def new_annotations(categories: list[dict], description: str = "INSTRUMENT-32CLASS instrument masks") -> dict:
    return {"info": {"description": description, "version": f"llinet {__version__}"}, "licenses": [],
            "categories": [dict(c) for c in categories], "images": [], "annotations": []}


def load_annotations(path: str | os.PathLike) -> dict:
    """Read and structurally check an annotations.json; errors name the file and the entry."""
    path = Path(path)
    coco = read_json_file(path, "annotations file")
    check_structure(coco, path)
    return coco


def open_annotations(path: str | os.PathLike, context: AnnotationContext) -> dict:
    """The existing file (its categories checked against the context's) or a new, empty document."""
    if not Path(path).exists():
        return new_annotations(context.categories)
    coco = load_annotations(path)
    have = {(c["name"], c.get("mid")) for c in coco["categories"]}
    missing = [c["name"] for c in context.categories if (c["name"], c["mid"]) not in have]
    if missing:
        raise InputError(f"categories differ from the class list (missing {missing[:5]})", file=path,
                         field="categories")
    return coco


def check_structure(coco: Any, source: str | os.PathLike = "<annotations>") -> None:
    if not isinstance(coco, dict):
        raise InputError("expected a COCO JSON object", file=source)
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise InputError(f"missing or non-list {key!r}", file=source, field=key)
    for key, needed in (("categories", ("id", "name")), ("images", ("id", "width", "height")),
                        ("annotations", ("id", "image_id", "category_id"))):
        seen: set = set()
        for i, entry in enumerate(coco[key]):
            if not isinstance(entry, dict) or any(k not in entry for k in needed):
                raise InputError(f"entry needs the keys {list(needed)}", file=source, field=f"{key}[{i}]")
            if entry["id"] in seen:
                raise InputError(f"duplicate id {entry['id']!r}", file=source, field=f"{key}[{i}].id")
            seen.add(entry["id"])
    image_ids = {img["id"] for img in coco["images"]}
    category_ids = {c["id"] for c in coco["categories"]}
    for i, ann in enumerate(coco["annotations"]):
        if ann["image_id"] not in image_ids:
            raise InputError(f"image_id {ann['image_id']!r} is not an image of the file", file=source,
                             field=f"annotations[{i}].image_id")
        if ann["category_id"] not in category_ids:
            raise InputError(f"category_id {ann['category_id']!r} is not a category of the file", file=source,
                             field=f"annotations[{i}].category_id")


def save_annotations(coco: dict, path: str | os.PathLike) -> Path:
    """Write atomically, deterministically ordered (images by clip id, annotations by image then id)."""
    check_structure(coco, path)
    images = sorted(coco["images"], key=lambda img: (str(img.get("clip_id", "")), img["id"]))
    order = {img["id"]: i for i, img in enumerate(images)}
    annotations = sorted(coco["annotations"], key=lambda a: (order[a["image_id"]], a["id"]))
    out = {**coco, "images": images, "annotations": annotations}
    atomic_write_text(path, json.dumps(out, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return Path(path)


def image_for_clip(coco: dict, clip_id: str) -> dict | None:
    for image in coco["images"]:
        if image.get("clip_id") == clip_id:
            return image
    return None


def annotations_for_clip(coco: dict, clip_id: str) -> list[dict]:
    image = image_for_clip(coco, clip_id)
    if image is None:
        return []
    return [a for a in coco["annotations"] if a["image_id"] == image["id"]]


def masks_for_clip(coco: dict, clip_id: str) -> list[np.ndarray]:
    """Each annotation's mask of the clip (boolean [H, W]), in annotation-id order."""
    image = image_for_clip(coco, clip_id)
    if image is None:
        return []
    anns = sorted(annotations_for_clip(coco, clip_id), key=lambda a: a["id"])
    return [decode_segmentation(a["segmentation"], int(image["width"]), int(image["height"])) for a in anns]


def mask_for_clip(coco: dict, clip_id: str) -> np.ndarray | None:
    """The union of the clip's masks (what the localisation metrics use), or None without one."""
    masks = masks_for_clip(coco, clip_id)
    return np.logical_or.reduce(masks) if masks else None


def remove_masks(coco: dict, clip_id: str) -> int:
    """Delete the clip's annotations and image record; returns how many annotations went."""
    image = image_for_clip(coco, clip_id)
    if image is None:
        return 0
    before = len(coco["annotations"])
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != image["id"]]
    coco["images"] = [img for img in coco["images"] if img is not image]
    return before - len(coco["annotations"])


def add_mask(coco: dict, target: MaskTarget, mask: Any, *, category: str | None = None, replace: bool = False,
             allow_multiple: bool = False, source: str | os.PathLike | None = None) -> dict:
    """Validate ``mask`` for ``target`` and add it as one annotation; returns the annotation.

    ``category`` (name or MID, if the mask came with one) must be the clip's class.
    ``replace`` drops the clip's earlier masks first; otherwise a second mask
    needs ``allow_multiple``.
    """
    array = validate_mask(mask, target.width, target.height, source=source, clip_id=target.clip_id)
    if category is not None and norm_name(category) != norm_name(target.class_name) and category != target.mid:
        raise InputError(f"category {category!r} does not match clip {target.clip_id!r}'s class "
                         f"{target.class_name!r} ({target.mid})", file=source)
    if replace:
        remove_masks(coco, target.clip_id)
    elif annotations_for_clip(coco, target.clip_id) and not allow_multiple:
        raise InputError(f"clip {target.clip_id!r} already has a mask (one per image unless --allow-multiple)",
                         file=source)
    image = _ensure_image(coco, target)
    rle = encode_mask(array)
    area, bbox = rle_area_bbox(rle)
    annotation = {"id": max((a["id"] for a in coco["annotations"]), default=0) + 1, "image_id": image["id"],
                  "category_id": target.category_id, "segmentation": rle, "area": area, "bbox": bbox,
                  "iscrowd": 0}
    coco["annotations"].append(annotation)
    return annotation


def _ensure_image(coco: dict, target: MaskTarget) -> dict:
    image = image_for_clip(coco, target.clip_id)
    if image is not None:
        if (image["width"], image["height"]) != (target.width, target.height):
            raise LlinetError(f"clip {target.clip_id!r}: its masks are {image['width']}x{image['height']} but the "
                              f"frame is now {target.width}x{target.height}; remove or replace them")
        return image
    image_id = image_id_for_clip(target.clip_id)
    clash = next((img for img in coco["images"] if img["id"] == image_id), None)
    if clash is not None:  # ~1e-4 chance for 750 images; refuse rather than renumber silently
        raise LlinetError(f"image id {image_id} of clip {target.clip_id!r} collides with clip {clash.get('clip_id')!r}")
    image = {"id": image_id, "clip_id": target.clip_id, "file_name": target.file_name, "width": target.width,
             "height": target.height, "class": target.class_name, "split": target.split}
    coco["images"].append(image)
    return image


# --------------------------------------------------------------------------- locked file updates (review page, CLI)
def save_clip_mask(path: str | os.PathLike, context: AnnotationContext, clip_id: str, mask: Any, *,
                   source: str | os.PathLike | None = None) -> dict:
    """Replace the clip's masks in the file by ``mask`` (validated): locked read-modify-atomic-write."""
    target = context.target(clip_id, source=source)
    with locked(path):
        coco = open_annotations(path, context)
        annotation = add_mask(coco, target, mask, replace=True, source=source)
        save_annotations(coco, path)
    return annotation


def delete_clip_masks(path: str | os.PathLike, context: AnnotationContext, clip_id: str) -> int:
    """Remove the clip's masks from the file (locked); returns how many were removed."""
    with locked(path):
        if not Path(path).exists():
            return 0
        coco = open_annotations(path, context)
        removed = remove_masks(coco, clip_id)
        if removed:
            save_annotations(coco, path)
    return removed
