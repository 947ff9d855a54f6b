"""The COCO mask library: pycocotools round trips, validation errors, load/save, the review-page calls."""
from __future__ import annotations

import json
import multiprocessing

import numpy as np
import pytest
from pycocotools.coco import COCO

from builder.annotate.coco import (
    MASKED_SPLITS,
    AnnotationContext,
    add_mask,
    categories_from_classes,
    decode_segmentation,
    delete_clip_masks,
    encode_mask,
    image_id_for_clip,
    load_annotations,
    mask_for_clip,
    masks_for_clip,
    new_annotations,
    open_annotations,
    remove_masks,
    save_annotations,
    save_clip_mask,
    validate_mask,
)
from builder.audioset.classes import load_classes
from builder.commands.common import INSTRUMENT32
from builder.errors import InputError
from builder.manifest.schema import read_manifest
from test_annotate_helpers import box, build_root, clip_id

CLASSES = load_classes(INSTRUMENT32 / "classes.csv")


@pytest.fixture()
def context(tmp_path):
    manifest, _ = build_root(tmp_path / "root")
    return AnnotationContext(manifest, tmp_path / "root", CLASSES)


def test_categories_are_the_32_classes_with_mids():
    cats = categories_from_classes(CLASSES)
    assert len(cats) == 32 and [c["id"] for c in cats] == list(range(1, 33))
    by_name = {c["name"]: c for c in cats}
    assert by_name["Tabla"]["mid"] == "/m/01p970" and by_name["Tabla"]["split"] == "test"
    assert by_name["Accordion"] == {"id": 1, "name": "Accordion", "supercategory": "musical instrument",
                                    "mid": "/m/0mkg", "split": "train"}


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (48, 48), (31, 64)])
def test_rle_round_trip_is_exact(shape):
    rng = np.random.default_rng(sum(shape))
    mask = rng.random(shape) > 0.6
    mask[0, 0] = True
    rle = encode_mask(mask)
    assert isinstance(rle["counts"], str)
    text = json.dumps(rle)                                        # JSON-ready: counts are ASCII
    back = decode_segmentation(json.loads(text), shape[1], shape[0])
    assert back.dtype == bool and np.array_equal(back, mask)


def test_add_mask_area_bbox_and_pycocotools_reads_the_file(context, tmp_path):
    coco = new_annotations(context.categories)
    mask = box(48, 10, 5, 30, 20)                                   # rows 10..29, cols 5..19
    mask[12, 30] = True                                             # one stray pixel widens the box
    ann = add_mask(coco, context.target(clip_id("tabla")), mask)
    assert ann["area"] == 20 * 15 + 1
    assert ann["bbox"] == [5.0, 10.0, 26.0, 20.0]                   # x, y, w, h (hand-computed)
    assert ann["category_id"] == next(c["id"] for c in context.categories if c["name"] == "Tabla")
    shofar = add_mask(coco, context.target(clip_id("shofar")), box(36, 0, 0, 36, 18))   # val_unseen is masked too
    path = save_annotations(coco, tmp_path / "annotations.json")
    api = COCO(str(path))                                           # the reference reader
    image = api.loadImgs(ann["image_id"])[0]
    assert image["clip_id"] == clip_id("tabla") and image["file_name"] == f"frames/{clip_id('tabla')}.jpg"
    assert (image["width"], image["height"]) == (48, 48) and image["id"] == image_id_for_clip(clip_id("tabla"))
    assert np.array_equal(api.annToMask(api.loadAnns(ann["id"])[0]).astype(bool), mask)
    assert api.loadAnns(shofar["id"])[0]["area"] == 36 * 18
    assert api.loadCats(ann["category_id"])[0]["mid"] == "/m/01p970"
    loaded = load_annotations(path)
    assert np.array_equal(mask_for_clip(loaded, clip_id("tabla")), mask)
    assert mask_for_clip(loaded, clip_id("didgeridoo")) is None


def test_save_is_deterministic_and_atomic(context, tmp_path):
    first, second = new_annotations(context.categories), new_annotations(context.categories)
    for coco, order in ((first, ("tabla", "didgeridoo")), (second, ("didgeridoo", "tabla"))):
        for name in order:
            target = context.target(clip_id(name))
            add_mask(coco, target, box(target.height, 2, 2, 9, 9))
    a = save_annotations(first, tmp_path / "a.json").read_text()
    b = save_annotations(second, tmp_path / "b.json").read_text()
    # image ids come from the clip ids, so only the annotation ids (order of adding) differ
    assert json.loads(a)["images"] == json.loads(b)["images"]
    assert not list(tmp_path.glob(".a.json.*"))


def test_one_mask_per_image_unless_allowed_and_replace(context):
    coco = new_annotations(context.categories)
    target = context.target(clip_id("tabla"))
    add_mask(coco, target, box(48, 0, 0, 10, 10))
    with pytest.raises(InputError, match="already has a mask"):
        add_mask(coco, target, box(48, 20, 20, 30, 30), source="tab.png")
    add_mask(coco, target, box(48, 20, 20, 30, 30), allow_multiple=True)
    assert len(masks_for_clip(coco, target.clip_id)) == 2
    assert mask_for_clip(coco, target.clip_id).sum() == 200
    add_mask(coco, target, box(48, 5, 5, 8, 8), replace=True)       # the review page's "save"
    assert [m.sum() for m in masks_for_clip(coco, target.clip_id)] == [9]
    assert remove_masks(coco, target.clip_id) == 1 and coco["images"] == []


@pytest.mark.parametrize("name, message", [
    ("drum", "split 'train'"),
    ("tabla_noframe", "no frame"),
])
def test_targets_outside_the_masked_splits_or_without_frames_are_refused(context, name, message):
    with pytest.raises(InputError, match=message) as info:
        context.target(clip_id(name), source="masks/x.png")
    assert "masks/x.png" in str(info.value)


def test_unknown_clip_and_missing_frame_file(context, tmp_path):
    with pytest.raises(InputError, match="not in the manifest"):
        context.target("zzzzzzzzzzz_0", source="a.json")
    (tmp_path / "root" / "frames" / f"{clip_id('didgeridoo')}.jpg").unlink()
    with pytest.raises(InputError, match="frame of clip .* not found"):
        context.target(clip_id("didgeridoo"))


@pytest.mark.parametrize("mask, message", [
    (np.ones((40, 48), bool), "48x40 \\(WxH\\) but the frame .* is 48x48"),
    (np.zeros((48, 48), bool), "empty"),
    (np.ones((48, 48, 3), bool), "2-D"),
])
def test_validate_mask_errors_name_the_file(mask, message):
    with pytest.raises(InputError, match=message) as info:
        validate_mask(mask, 48, 48, source="masks/a.png", clip_id="x")
    assert info.value.file == "masks/a.png"


def test_category_must_match_the_clip(context):
    coco = new_annotations(context.categories)
    target = context.target(clip_id("tabla"))
    with pytest.raises(InputError, match="does not match"):
        add_mask(coco, target, box(48, 0, 0, 4, 4), category="Drum")
    add_mask(coco, target, box(48, 0, 0, 4, 4), category="/m/01p970")   # the MID names it too
    assert coco["annotations"][0]["category_id"] == target.category_id


def test_masked_splits_and_manifest_classes_against_the_class_list(context, tmp_path):
    assert MASKED_SPLITS == ("test", "val_unseen")
    assert context.masked_clips() == sorted([clip_id("tabla"), clip_id("didgeridoo"), clip_id("shofar"),
                                             clip_id("tabla_noframe")])
    assert clip_id("tabla_reserve") in context.masked_clips(selected_only=False)
    manifest, _ = build_root(tmp_path / "other")
    manifest.loc[0, "mid"] = "/m/wrong"
    with pytest.raises(InputError, match="not in the class list"):
        AnnotationContext(manifest, tmp_path / "other", CLASSES)


def test_load_errors_name_file_and_entry(context, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON") as info:
        load_annotations(bad)
    assert str(bad) in str(info.value)
    coco = new_annotations(context.categories)
    add_mask(coco, context.target(clip_id("tabla")), box(48, 0, 0, 4, 4))
    coco["annotations"][0]["image_id"] = 7
    bad.write_text(json.dumps(coco))
    with pytest.raises(InputError) as info:
        load_annotations(bad)
    assert info.value.field == "annotations[0].image_id"
    other = new_annotations(categories_from_classes(CLASSES[:3]))
    bad.write_text(json.dumps(other))
    with pytest.raises(InputError, match="categories differ"):
        open_annotations(bad, context)
    assert open_annotations(tmp_path / "new.json", context)["images"] == []


def _save_many(root, names, rounds):
    context = AnnotationContext(read_manifest(root / "manifest.csv"), root, CLASSES)
    for i in range(rounds):
        for name in names:
            target = context.target(clip_id(name))
            save_clip_mask(root / "annotations.json", context, target.clip_id, box(target.height, 0, 0, i + 1, i + 1))


def test_locked_file_updates_from_two_processes(tmp_path):
    root = tmp_path / "root"
    build_root(root)
    fork = multiprocessing.get_context("fork")
    groups = (["tabla"], ["didgeridoo", "shofar"])
    workers = [fork.Process(target=_save_many, args=(root, names, 6)) for names in groups]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    coco = load_annotations(root / "annotations.json")
    assert sorted(img["clip_id"] for img in coco["images"]) == sorted([clip_id("tabla"), clip_id("didgeridoo"),
                                                                       clip_id("shofar")])
    assert [m.sum() for m in masks_for_clip(coco, clip_id("tabla"))] == [36]     # the last save replaced the rest
    context = AnnotationContext(read_manifest(root / "manifest.csv"), root, CLASSES)
    assert delete_clip_masks(root / "annotations.json", context, clip_id("tabla")) == 1
    assert mask_for_clip(load_annotations(root / "annotations.json"), clip_id("tabla")) is None
