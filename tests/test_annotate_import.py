"""annotate import: mask folders, LabelMe and COCO (CVAT / Label Studio) files written here in those tools'
documented formats; every bad input is an error naming the file, and nothing is written then."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from builder.annotate.coco import AnnotationContext, mask_for_clip, masks_for_clip, new_annotations
from builder.annotate.importers import (
    apply_items,
    clip_from_name,
    load_mask_image,
    read_coco,
    read_labelme,
    read_mask_folder,
)
from builder.audioset.classes import load_classes
from builder.commands.common import INSTRUMENT32
from builder.errors import InputError
from test_annotate_helpers import box, build_root, clip_id, save_mask, uncompressed_rle

CLASSES = load_classes(INSTRUMENT32 / "classes.csv")
TABLA, DIDGE, SHOFAR = clip_id("tabla"), clip_id("didgeridoo"), clip_id("shofar")


@pytest.fixture()
def context(tmp_path):
    manifest, _ = build_root(tmp_path / "root")
    return AnnotationContext(manifest, tmp_path / "root", CLASSES)


def run(context, items, **kwargs):
    coco = new_annotations(context.categories)
    report = apply_items(coco, items, context, **kwargs)
    return coco, report


# --------------------------------------------------------------------------- mask files
def test_mask_file_encodings(tmp_path):
    mask = box(40, 3, 4, 20, 30)
    assert np.array_equal(load_mask_image(save_mask(tmp_path / "l.png", mask)), mask)
    assert np.array_equal(load_mask_image(save_mask(tmp_path / "01.png", mask, scale=1)), mask)
    assert np.array_equal(load_mask_image(save_mask(tmp_path / "bit.png", mask, mode="1")), mask)
    assert np.array_equal(load_mask_image(save_mask(tmp_path / "rgb.png", mask, mode="RGB")), mask)
    palette = Image.fromarray(mask.astype(np.uint8) * 3, mode="L").convert("P")
    palette.save(tmp_path / "p.png")
    assert np.array_equal(load_mask_image(tmp_path / "p.png"), mask)
    lossy = load_mask_image(save_mask(tmp_path / "m.jpg", mask, quality=90))
    assert (lossy & mask).sum() / (lossy | mask).sum() > 0.97       # JPEG rings at edges; IoU stays high
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="not a readable image") as info:
        load_mask_image(tmp_path / "junk.png")
    assert "junk.png" in str(info.value)


def test_mask_folder_import_recursive_and_instances(context, tmp_path):
    folder = tmp_path / "masks"
    tabla = box(48, 10, 10, 20, 40)
    save_mask(folder / f"{TABLA}.png", tabla)
    save_mask(folder / "val" / f"{SHOFAR}.PNG", box(36, 0, 0, 5, 5))
    coco, report = run(context, read_mask_folder(folder))
    assert report.added == 2 and report.clips == sorted([TABLA, SHOFAR])
    assert np.array_equal(mask_for_clip(coco, TABLA), tabla)
    save_mask(folder / f"{TABLA}.2.png", box(48, 30, 30, 40, 40))
    with pytest.raises(InputError, match="has 2 masks") as info:
        run(context, read_mask_folder(folder))
    assert f"{TABLA}.2.png" in str(info.value) and f"{TABLA}.png" in str(info.value)
    coco, report = run(context, read_mask_folder(folder), allow_multiple=True)
    assert len(masks_for_clip(coco, TABLA)) == 2 and report.added == 3


@pytest.mark.parametrize("name, mask, message", [
    (f"{TABLA}.png", box(48, 0, 0, 0, 0), "empty"),
    (f"{TABLA}.png", box(40, 0, 0, 5, 5), "40x40 \\(WxH\\) but the frame .* is 48x48"),
    (f"{clip_id('drum')}.png", box(32, 0, 0, 5, 5), "split 'train'"),
    ("zzzzzzzzzzz_0.png", box(48, 0, 0, 5, 5), "not in the manifest"),
    ("notes.png", box(48, 0, 0, 5, 5), "unexpected file"),
])
def test_mask_folder_bad_inputs_name_the_file(context, tmp_path, name, mask, message):
    folder = tmp_path / "masks"
    save_mask(folder / f"{DIDGE}.png", box(40, 1, 1, 9, 9))
    path = save_mask(folder / name, mask)
    with pytest.raises(InputError, match=message) as info:
        run(context, read_mask_folder(folder))
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- LabelMe
def labelme_doc(image_path, shapes, width=48, height=48):
    return {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": height, "imageWidth": width}


def shape(label, points, kind="polygon", group=None, **extra):
    return {"label": label, "points": points, "group_id": group, "description": "", "shape_type": kind,
            "flags": {}, "mask": None, **extra}


def write_json(path, doc):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_labelme_polygon_rectangle_circle_and_mask_shapes(context, tmp_path):
    folder = tmp_path / "labelme"
    # A polygon outlining rows 10..20, cols 10..30 inclusive (LabelMe draws the outline too).
    write_json(folder / f"{TABLA}.json", labelme_doc(f"../images/{TABLA}.jpg",
                                                     [shape("Tabla", [[10, 10], [30, 10], [30, 20], [10, 20]])]))
    # Two shapes of one group = one instance; a 3x2 bitmap patch at x 2..4, y 5..6.
    patch = io.BytesIO()
    Image.fromarray(np.array([[255, 0, 255], [255, 255, 255]], np.uint8)).save(patch, format="PNG")
    write_json(folder / "b.json", labelme_doc(f"C:\\work\\{DIDGE}.jpg", [
        shape("didgeridoo", [[20, 20], [25, 30]], "rectangle", group=1),
        shape("Didgeridoo", [[2, 5], [4, 6]], "mask", group=1, mask=base64.b64encode(patch.getvalue()).decode())],
        width=40, height=40))
    write_json(folder / "c.json", labelme_doc(f"{SHOFAR}.jpg", [shape("/m/0l14l2", [[18, 18], [18, 21]], "circle")],
                                              width=36, height=36))
    coco, report = run(context, read_labelme(folder, context.rows))
    assert report.added == 3
    assert np.array_equal(mask_for_clip(coco, TABLA), box(48, 10, 10, 21, 31))
    expected = box(40, 20, 20, 31, 26)
    expected[5, 2:5] = [True, False, True]
    expected[6, 2:5] = True
    assert np.array_equal(mask_for_clip(coco, DIDGE), expected)
    circle = mask_for_clip(coco, SHOFAR)
    assert circle[18, 18] and circle[18, 21] and not circle[18, 23] and circle.sum() > 25


@pytest.mark.parametrize("doc, message", [
    (labelme_doc(f"{TABLA}.jpg", [shape("Drum", [[1, 1], [9, 1], [9, 9]])]), "does not match clip"),
    (labelme_doc(f"{TABLA}.jpg", [shape("Banjolele", [[1, 1], [9, 1], [9, 9]])]), "not one of the classes"),
    (labelme_doc(f"{TABLA}.jpg", [shape("Tabla", [[1, 1], [9, 9]], "line")]), "has no area"),
    (labelme_doc(f"{TABLA}.jpg", [shape("Tabla", [[1, 1], [9, 9]])]), "at least 3 points"),
    (labelme_doc(f"{TABLA}.jpg", [shape("Tabla", [[1, 1], [9, 1], [9, 9]])], width=64), "declares the image as 64x48"),
    (labelme_doc(f"{TABLA}.jpg", []), "no shapes"),
    (labelme_doc("holiday.jpg", [shape("Tabla", [[1, 1], [9, 1], [9, 9]])]), "cannot tie imagePath"),
    (labelme_doc(f"{TABLA}.jpg", [shape("Tabla", [[1, 1], [9, 1], [9, 9]]),
                                  shape("Tabla", [[20, 20], [30, 20], [30, 30]])]),
     "has 2 masks"),
    ({"imagePath": "x.jpg"}, "not a LabelMe file"),
])
def test_labelme_bad_inputs_name_the_file(context, tmp_path, doc, message):
    path = write_json(tmp_path / "lm" / "one.json", doc)
    with pytest.raises(InputError, match=message) as info:
        run(context, read_labelme(path, context.rows))
    assert str(path) in str(info.value)


def test_labelme_multiple_instances_when_allowed(context, tmp_path):
    path = write_json(tmp_path / "two.json", labelme_doc(f"{TABLA}.jpg", [
        shape("Tabla", [[1, 1], [9, 1], [9, 9]]), shape("Tabla", [[20, 20], [30, 20], [30, 30]])]))
    coco, _ = run(context, read_labelme(path, context.rows), allow_multiple=True)
    assert len(masks_for_clip(coco, TABLA)) == 2


# --------------------------------------------------------------------------- COCO from CVAT / Label Studio
def cvat_export(tabla_mask, didge_mask):
    """CVAT "COCO 1.0": ids from 1, a polygon, and a mask as uncompressed RLE with iscrowd 1."""
    return {
        "licenses": [{"name": "", "id": 0, "url": ""}],
        "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
        "categories": [{"id": 1, "name": "Didgeridoo", "supercategory": ""},
                       {"id": 2, "name": "Tabla", "supercategory": ""}],
        "images": [{"id": 1, "width": 48, "height": 48, "file_name": f"{TABLA}.jpg", "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0},
                   {"id": 2, "width": 40, "height": 40, "file_name": f"images/{DIDGE}.jpg", "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0},
                   {"id": 3, "width": 36, "height": 36, "file_name": f"{SHOFAR}.jpg", "license": 0,
                    "flickr_url": "", "coco_url": "", "date_captured": 0}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "segmentation": [tabla_mask], "area": 0.0,
             "bbox": [0, 0, 0, 0], "iscrowd": 0, "attributes": {"occluded": False}},
            {"id": 2, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 0.0, "bbox": [0, 0, 0, 0],
             "segmentation": {"counts": uncompressed_rle(didge_mask), "size": [40, 40]},
             "attributes": {"occluded": False}}],
    }


def test_cvat_coco_polygon_and_uncompressed_rle(context, tmp_path):
    didge = box(40, 5, 6, 25, 16)
    path = write_json(tmp_path / "cvat.json", cvat_export([4, 4, 20, 4, 20, 12, 4, 12], didge))
    coco, report = run(context, read_coco(path, context.rows))
    assert report.added == 2                       # the image without annotations is skipped
    assert np.array_equal(mask_for_clip(coco, DIDGE), didge)
    # pycocotools rasterises integer polygon corners half-open: x 4..19, y 4..11
    assert np.array_equal(mask_for_clip(coco, TABLA), box(48, 4, 4, 12, 20))


def test_label_studio_coco_with_hash_prefix_zero_ids_and_rectangles(context, tmp_path):
    doc = {"images": [{"width": 48, "height": 48, "id": 0, "file_name": f"images/1a2b3c4d-{TABLA}.jpg"},
                      {"width": 40, "height": 40, "id": 1, "file_name": f"images/{DIDGE}.jpg"}],
           "categories": [{"id": 0, "name": "Didgeridoo"}, {"id": 1, "name": "Tabla"}],
           "annotations": [
               {"id": 0, "image_id": 0, "category_id": 1, "segmentation": [[2.0, 2.0, 12.0, 2.0, 12.0, 9.0]],
                "bbox": [2.0, 2.0, 10.0, 7.0], "ignore": 0, "iscrowd": 0, "area": 35.0},
               {"id": 1, "image_id": 1, "category_id": 0, "segmentation": [], "bbox": [10, 10, 8, 4],
                "ignore": 0, "iscrowd": 0, "area": 32}],
           "info": {"year": 2026, "version": "1.0", "description": "", "contributor": "Label Studio"}}
    coco, _ = run(context, read_coco(write_json(tmp_path / "result.json", doc), context.rows))
    assert mask_for_clip(coco, DIDGE).sum() == 8 * 4 and mask_for_clip(coco, DIDGE)[10:14, 10:18].all()
    assert mask_for_clip(coco, TABLA)[3, 10]
    assert clip_from_name(f"1a2b3c4d-{TABLA}.jpg", {TABLA}) == TABLA and clip_from_name("x.jpg", {TABLA}) is None


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["annotations"][0].update(category_id=1), "does not match clip"),
    (lambda d: d["annotations"][0].update(category_id=9), "category_id 9"),
    (lambda d: d["annotations"][0].update(image_id=99), "image_id 99"),
    (lambda d: d["images"][0].update(width=50), "declares the image as 50x48"),
    (lambda d: d["images"][0].update(file_name="holiday.jpg"), "cannot tie file_name"),
    (lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3, 4]]), "bad segmentation"),
    (lambda d: d["annotations"][1]["segmentation"].update(size=[48, 48]), "RLE size"),
    (lambda d: d["annotations"].append(dict(d["annotations"][0], id=5)), "has 2 masks"),
])
def test_coco_bad_inputs_name_the_file(context, tmp_path, edit, message):
    doc = cvat_export([4, 4, 20, 4, 20, 12, 4, 12], box(40, 5, 6, 25, 16))
    edit(doc)
    path = write_json(tmp_path / "bad.json", doc)
    with pytest.raises(InputError, match=message) as info:
        run(context, read_coco(path, context.rows))
    assert str(path) in str(info.value)


def test_failed_import_leaves_the_document_unchanged(context, tmp_path):
    coco = new_annotations(context.categories)
    apply_items(coco, read_mask_folder(_folder(tmp_path / "ok", {TABLA: box(48, 0, 0, 9, 9)})), context)
    before = json.dumps(coco, sort_keys=True)
    bad = _folder(tmp_path / "bad", {TABLA: box(48, 1, 1, 5, 5), DIDGE: box(40, 0, 0, 0, 0)})
    with pytest.raises(InputError, match="empty"):
        apply_items(coco, read_mask_folder(bad), context)
    assert json.dumps(coco, sort_keys=True) == before


def _folder(folder, masks):
    for cid, mask in masks.items():
        save_mask(folder / f"{cid}.png", mask)
    return folder
