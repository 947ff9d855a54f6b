"""Import masks made elsewhere: a folder of binary images, LabelMe JSON, COCO JSON (CVAT, Label Studio).

Every importer first reads *all* its inputs into :class:`MaskItem`s, then
:func:`apply_items` checks them all (manifest, split, frame size, category,
one mask per image) before the document changes -- a bad file stops the import
with an error naming it, and nothing is written.

* **Mask folder** -- ``<clip_id>.png|.jpg|.jpeg`` anywhere under the folder;
  more instances as ``<clip_id>.<k>.png``. Foreground: pixel value > 127, or
  non-zero when the image's maximum is 1 (0/1 masks); palette images: non-zero
  index; 1-bit images as stored.
* **LabelMe** -- ``*.json`` with ``shapes`` (``polygon``, ``rectangle``,
  ``circle``, ``mask``), rasterised the way LabelMe's own ``shape_to_mask``
  does (PIL polygon with outline). Shapes sharing a ``group_id`` form one
  instance; each other shape is one instance. The clip is the stem of
  ``imagePath`` (or of the JSON file); ``imageWidth``/``imageHeight`` must match
  the frame; each ``label`` must name the clip's class (or its MID).
* **COCO** -- as CVAT ("COCO 1.0") and Label Studio ("COCO") export it:
  polygons, uncompressed (CVAT masks) or compressed RLE; an annotation with an
  empty ``segmentation`` and a ``bbox`` (Label Studio rectangles) becomes a
  box mask. Images are tied to clips by the file name's stem, also after a tool
  prefix such as Label Studio's ``1a2b3c4d-`` upload hash. Categories are
  matched by name (or ``mid``), never by id (tools number them differently).
"""
from __future__ import annotations

import base64
import io
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from builder.annotate.coco import (
    AnnotationContext,
    add_mask,
    decode_segmentation,
    norm_name,
    remove_masks,
    validate_mask,
)
from builder.errors import InputError, read_json_file
from builder.manifest.ids import CLIP_ID_RE

MASK_FILE_RE = re.compile(r"(?P<clip>[A-Za-z0-9_-]{11}_\d+)(?:\.(?P<k>\d+))?\.(?:png|jpe?g)", re.IGNORECASE)
LABELME_SHAPES = ("polygon", "rectangle", "circle", "mask")


@dataclass
class MaskItem:
    clip_id: str
    mask: np.ndarray
    source: str                     # file (and entry) it came from, for error messages
    category: str | None = None     # name or MID given by the tool, checked against the clip's class
    size: tuple[int, int] | None = None   # (width, height) the tool declared for the image


@dataclass
class ImportReport:
    added: int = 0
    clips: list[str] = field(default_factory=list)
    replaced: int = 0               # earlier annotations of these clips that were dropped


def load_mask_image(path: str | os.PathLike) -> np.ndarray:
    """A boolean mask from a PNG/JPEG file (rules in the module doc)."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "1":
                return np.array(image, dtype=bool)
            if mode == "P":
                return np.array(image) != 0
            gray = np.array(image.convert("L") if mode not in ("L", "I", "I;16", "F") else image)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"not a readable image: {exc}", file=path) from None
    threshold = 0 if gray.max() <= 1 else 127
    return gray > threshold


def clip_from_name(name: str, known: Iterable[str]) -> str | None:
    """The clip id a file name refers to: the stem itself, or its longest suffix that is a known clip id."""
    stem = Path(name).stem
    known = set(known)
    if stem in known:
        return stem
    for start in range(len(stem)):
        tail = stem[start:]
        if CLIP_ID_RE.fullmatch(tail) and tail in known:
            return tail
    return None


# --------------------------------------------------------------------------- readers
def read_mask_folder(folder: str | os.PathLike) -> list[MaskItem]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("mask folder not found", file=folder)
    items = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        match = MASK_FILE_RE.fullmatch(path.name)
        if match is None:
            raise InputError("unexpected file: mask files are named <clip_id>.png/.jpg/.jpeg "
                             "(or <clip_id>.<k>.png for more instances)", file=path)
        items.append(MaskItem(match["clip"], load_mask_image(path), str(path)))
    if not items:
        raise InputError("no mask files found", file=folder)
    return items


def read_labelme(inputs: str | os.PathLike | Iterable[str | os.PathLike], known: Iterable[str]) -> list[MaskItem]:
    """LabelMe JSON files (a folder is searched recursively for *.json)."""
    paths = _json_files(inputs)
    known = set(known)
    items = []
    for path in paths:
        doc = read_json_file(path, "JSON file")
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
            raise InputError("not a LabelMe file (no 'shapes' list)", file=path)
        image_path = str(doc.get("imagePath") or "")
        clip_id = clip_from_name(Path(image_path.replace("\\", "/")).name, known) if image_path else None
        clip_id = clip_id or clip_from_name(path.name, known)
        if clip_id is None:
            raise InputError(f"cannot tie imagePath {image_path!r} or the file name to a clip of the manifest",
                             file=path, field="imagePath")
        try:
            width, height = int(doc["imageWidth"]), int(doc["imageHeight"])
        except (KeyError, TypeError, ValueError):
            raise InputError("imageWidth/imageHeight missing or not integers", file=path) from None
        groups: dict[Any, list[tuple[int, dict]]] = defaultdict(list)
        for index, shape in enumerate(doc["shapes"]):
            if not isinstance(shape, dict):
                raise InputError("shape is not an object", file=path, field=f"shapes[{index}]")
            group = shape.get("group_id")
            groups[("group", group) if group is not None else ("shape", index)].append((index, shape))
        if not groups:
            raise InputError("no shapes: the image has no mask", file=path, field="shapes")
        for members in groups.values():
            mask = np.zeros((height, width), dtype=bool)
            labels = []
            for index, shape in members:
                mask |= _labelme_shape(shape, width, height, path, index)
                labels.append(str(shape.get("label", "")).strip())
            if len({norm_name(label) for label in labels}) != 1:
                raise InputError(f"shapes of one group carry different labels {sorted(set(labels))}", file=path,
                                 field=f"shapes[{members[0][0]}].label")
            items.append(MaskItem(clip_id, mask, f"{path} shapes[{members[0][0]}]", labels[0], (width, height)))
    return items


def _labelme_shape(shape: dict, width: int, height: int, path: Path, index: int) -> np.ndarray:
    where = f"shapes[{index}]"
    kind = shape.get("shape_type") or "polygon"
    if kind not in LABELME_SHAPES:
        raise InputError(f"shape_type {kind!r} has no area; supported: {list(LABELME_SHAPES)}", file=path,
                         field=f"{where}.shape_type")
    try:
        points = [(float(x), float(y)) for x, y in shape.get("points", [])]
    except (TypeError, ValueError):
        raise InputError("points must be [x, y] pairs", file=path, field=f"{where}.points") from None
    needed = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}[kind]
    if len(points) < needed or (kind != "polygon" and len(points) != needed):
        raise InputError(f"a {kind} needs {'at least ' if kind == 'polygon' else ''}{needed} points, "
                         f"got {len(points)}", file=path, field=f"{where}.points")
    if kind == "mask":
        return _labelme_bitmap(shape, points, width, height, path, where)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "polygon":
        draw.polygon(points, outline=1, fill=1)
    elif kind == "rectangle":
        (x1, y1), (x2, y2) = points
        draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=1, fill=1)
    else:
        (cx, cy), (px, py) = points
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    return np.array(canvas, dtype=bool)


def _labelme_bitmap(shape: dict, points, width: int, height: int, path: Path, where: str) -> np.ndarray:
    """LabelMe 'mask' shape: a base64 PNG covering the box points[0]..points[1] (inclusive)."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape.get("mask") or "", validate=True))) as image:
            patch = np.array(image.convert("L")) > 0
    except (ValueError, UnidentifiedImageError, OSError):
        raise InputError("'mask' is not a base64-encoded image", file=path, field=f"{where}.mask") from None
    (x1, y1), (x2, y2) = [(int(x), int(y)) for x, y in points]
    if patch.shape != (y2 - y1 + 1, x2 - x1 + 1) or x1 < 0 or y1 < 0 or x2 >= width or y2 >= height:
        raise InputError(f"mask patch {patch.shape[1]}x{patch.shape[0]} does not fit the box {points} "
                         f"inside the {width}x{height} image", file=path, field=f"{where}.mask")
    out = np.zeros((height, width), dtype=bool)
    out[y1:y2 + 1, x1:x2 + 1] = patch
    return out


def read_coco(path: str | os.PathLike, known: Iterable[str]) -> list[MaskItem]:
    path = Path(path)
    doc = read_json_file(path, "JSON file")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations")):
        raise InputError("not a COCO file (needs 'images' and 'annotations' lists)", file=path)
    known = set(known)
    categories = {c.get("id"): c for c in doc.get("categories", []) if isinstance(c, dict)}
    images = {}
    for i, image in enumerate(doc["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise InputError("image entry without an id", file=path, field=f"images[{i}]")
        images[image["id"]] = (i, image)
    items = []
    for i, ann in enumerate(doc["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or ann.get("image_id") not in images:
            raise InputError(f"image_id {ann.get('image_id') if isinstance(ann, dict) else None!r} is not an image "
                             "of the file", file=path, field=f"{where}.image_id")
        index, image = images[ann["image_id"]]
        clip_id = image.get("clip_id") if image.get("clip_id") in known else \
            clip_from_name(str(image.get("file_name", "")).replace("\\", "/").rsplit("/", 1)[-1], known)
        if clip_id is None:
            raise InputError(f"cannot tie file_name {image.get('file_name')!r} to a clip of the manifest",
                             file=path, field=f"images[{index}].file_name")
        try:
            width, height = int(image["width"]), int(image["height"])
        except (KeyError, TypeError, ValueError):
            raise InputError("width/height missing or not integers", file=path, field=f"images[{index}]") from None
        category = categories.get(ann.get("category_id"))
        if category is None:
            raise InputError(f"category_id {ann.get('category_id')!r} is not a category of the file", file=path,
                             field=f"{where}.category_id")
        items.append(MaskItem(clip_id, _coco_mask(ann, width, height, path, where), f"{path} {where}",
                              str(category.get("mid") or category.get("name", "")), (width, height)))
    return items


def _coco_mask(ann: dict, width: int, height: int, path: Path, where: str) -> np.ndarray:
    segmentation = ann.get("segmentation")
    if not segmentation and ann.get("bbox"):
        x, y, w, h = (float(v) for v in ann["bbox"])
        segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    try:
        return decode_segmentation(segmentation, width, height)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"bad segmentation: {exc}", file=path, field=f"{where}.segmentation") from None


def _json_files(inputs) -> list[Path]:
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths: list[Path] = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            paths.extend(sorted(p for p in entry.rglob("*.json") if not p.name.startswith(".")))
        elif entry.is_file():
            paths.append(entry)
        else:
            raise InputError("not found", file=entry)
    if not paths:
        raise InputError("no LabelMe JSON files found", file=", ".join(map(str, inputs)))
    return paths


# --------------------------------------------------------------------------- applying
def apply_items(coco: dict, items: list[MaskItem], context: AnnotationContext, *,
                allow_multiple: bool = False) -> ImportReport:
    """Check every item, then add them; an imported clip's earlier masks are replaced."""
    by_clip: dict[str, list[MaskItem]] = defaultdict(list)
    for item in items:
        by_clip[item.clip_id].append(item)
    prepared = []
    for clip_id in sorted(by_clip):
        group = by_clip[clip_id]
        if len(group) > 1 and not allow_multiple:
            raise InputError(f"clip {clip_id!r} has {len(group)} masks ({', '.join(i.source for i in group)}); "
                             "one per image unless --allow-multiple", file=group[1].source)
        for item in group:
            target = context.target(clip_id, source=item.source)
            if item.size is not None and item.size != (target.width, target.height):
                raise InputError(f"the file declares the image as {item.size[0]}x{item.size[1]} but the frame "
                                 f"{target.file_name} is {target.width}x{target.height}", file=item.source)
            validate_mask(item.mask, target.width, target.height, source=item.source, clip_id=clip_id)
            if item.category is not None:
                category = context.category(item.category)
                if category is None:
                    raise InputError(f"category {item.category!r} is not one of the classes", file=item.source)
                if category["id"] != target.category_id:
                    raise InputError(f"category {category['name']!r} does not match clip {clip_id!r}'s class "
                                     f"{target.class_name!r}", file=item.source)
            prepared.append((target, item))
    report = ImportReport()
    for clip_id in sorted(by_clip):
        report.replaced += remove_masks(coco, clip_id)
    for target, item in prepared:
        add_mask(coco, target, item.mask, allow_multiple=True, source=item.source)
        report.added += 1
    report.clips = sorted(by_clip)
    return report
