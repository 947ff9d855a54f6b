"""Localisation metrics (LLINet 16x16 and LVS 224x224) and COCO masks via pycocotools."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from builder.errors import InputError
from model.evaluation.metrics.localization import (
    LLINET_THRESHOLDS,
    LVS_THRESHOLDS,
    ciou,
    iou,
    llinet_localization,
    llinet_predict,
    llinet_protocol,
    lvs_localization,
    lvs_predict,
    select_llinet_k,
    success_curve,
    trapezoid_auc,
    upsample_maps,
)
from model.evaluation.metrics.masks import center_square, decode_coco_masks, mask_to_grid, mask_to_square


def test_llinet_threshold_and_iou_hand_computed():
    maps = np.array([[[1.0, 0.5], [0.1, 0.0]]])
    mask = np.array([[[True, False], [True, False]]])
    # k = 3: threshold 0.3 keeps the top row -> intersection 1, union 3.
    assert llinet_localization(maps, mask, 3)["ious"][0] == pytest.approx(1 / 3)
    # k = 6: threshold 0.6 keeps one pixel -> 1 / 2.
    assert llinet_localization(maps, mask, 6)["ious"][0] == pytest.approx(1 / 2)
    np.testing.assert_array_equal(llinet_predict(maps, 5)[0], [[True, False], [False, False]])


def test_iou_of_empty_union_is_zero():
    assert iou(np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2), bool))[0] == 0.0


def test_llinet_auc_hand_computed():
    # IoUs 0, .5, 1: success is 1 at t=0, 2/3 for t in (0, .5], 1/3 above.
    curve = success_curve(np.array([0.0, 0.5, 1.0]), LLINET_THRESHOLDS)
    assert len(curve) == 51
    assert curve.mean() == pytest.approx((1 + 25 * 2 / 3 + 25 / 3) / 51)


def _half_map() -> np.ndarray:
    left = np.zeros((16, 16), np.float32)
    left[:, :8] = 1.0
    return left


def test_lvs_median_threshold_and_ciou_hand_computed():
    predicted = lvs_predict(upsample_maps(_half_map()[None]))[0]
    expected = np.zeros((224, 224), bool)
    expected[:, :112] = True
    np.testing.assert_array_equal(predicted, expected)
    quarter = np.zeros((224, 224), bool)
    quarter[:, :56] = True
    masks = np.stack([quarter, expected, ~expected])
    result = lvs_localization(np.stack([_half_map()] * 3), masks)
    np.testing.assert_allclose(result["cious"], [0.5, 1.0, 0.0])
    assert result["mean_ciou"] == pytest.approx(0.5)
    assert result["success_at_0_5"] == pytest.approx(2 / 3)
    assert len(LVS_THRESHOLDS) == 21 and len(result["curve"]) == 21
    # Trapezoid over 21 points: (1+2/3)/2*.05 + 9*(2/3)*.05 + (2/3+1/3)/2*.05 + 9*(1/3)*.05
    assert result["auc"] == pytest.approx(0.0416667 + 0.3 + 0.025 + 0.15, abs=1e-6)


def test_ciou_formula_counts_false_positives_in_the_denominator():
    pred = np.array([[[1, 1], [0, 0]]], bool)
    truth = np.array([[[1, 0], [1, 0]]], bool)
    assert ciou(pred, truth)[0] == pytest.approx(1 / (2 + 1))


def test_trapezoid_auc():
    assert trapezoid_auc(np.array([0, 0.5, 1]), np.array([1, 1, 0])) == pytest.approx(0.75)


def test_auc_within_one_point_of_mean_iou_on_random_data():
    rng = np.random.default_rng(0)
    maps = rng.uniform(-0.2, 1, (600, 16, 16)) * rng.uniform(0.2, 1, (600, 1, 1))
    masks = rng.uniform(0, 1, (600, 16, 16)) < rng.uniform(0.05, 0.9, (600, 1, 1))
    for k in (2, 4, 6):
        result = llinet_localization(maps, masks, k)
        assert abs(result["auc"] - result["miou"]) <= 0.01
    masks224 = np.repeat(np.repeat(masks[:200], 14, axis=1), 14, axis=2)
    lvs = lvs_localization(maps[:200], masks224)
    assert abs(lvs["auc"] - lvs["mean_ciou"]) <= 0.01


def test_k_is_chosen_on_validation_never_test():
    # Peak 1.0 and a shoulder 0.55: k = 2..5 keep both pixels, k = 6 keeps the peak only.
    # Validation's mask is the peak (k = 6 best); test's mask is both (k = 2 would be best).
    peaked = np.full((1, 4, 4), 0.1)
    peaked[0, 0, 0] = 1.0
    peaked[0, 0, 1] = 0.55
    only_peak = np.zeros((1, 4, 4), bool)
    only_peak[0, 0, 0] = True
    both = only_peak.copy()
    both[0, 0, 1] = True
    k, aucs = select_llinet_k(peaked, only_peak)
    assert k == 6 and aucs[6] > aucs[2]
    result = llinet_protocol(peaked, only_peak, peaked, both)
    assert result["k"] == 6 and result["k_selected_on"] == "validation"
    assert result["miou"] == pytest.approx(0.5)   # k = 2 would have scored 1.0 on test
    assert llinet_localization(peaked, both, 2)["miou"] == pytest.approx(1.0)


def test_shape_errors():
    with pytest.raises(ValueError, match="differ"):
        llinet_localization(np.zeros((2, 16, 16)), np.zeros((3, 16, 16), bool), 3)
    with pytest.raises(ValueError, match="no images"):
        llinet_localization(np.zeros((0, 16, 16)), np.zeros((0, 16, 16), bool), 3)
    with pytest.raises(ValueError, match="224"):
        lvs_localization(np.zeros((1, 16, 16)), np.zeros((1, 16, 16), bool))


def _coco(mask: np.ndarray, clip_id: str = "abcdefghijk_1000") -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return {"images": [{"id": 7, "file_name": f"{clip_id}.jpg", "height": mask.shape[0],
                        "width": mask.shape[1]}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "segmentation": rle,
                             "area": int(mask.sum()), "bbox": [0, 0, 1, 1], "iscrowd": 1}],
            "categories": [{"id": 1, "name": "Tabla"}]}


def test_coco_rle_round_trip_through_pycocotools(tmp_path):
    rng = np.random.default_rng(1)
    mask = rng.uniform(size=(30, 40)) < 0.3
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(_coco(mask)))
    decoded = decode_coco_masks(path)
    assert list(decoded) == ["abcdefghijk_1000"]
    np.testing.assert_array_equal(decoded["abcdefghijk_1000"], mask)


def test_coco_polygons_and_union_of_annotations():
    data = _coco(np.zeros((20, 20), bool))
    data["annotations"][0]["segmentation"] = [[0, 0, 10, 0, 10, 10, 0, 10]]
    data["annotations"].append({"id": 2, "image_id": 7, "category_id": 1,
                                "segmentation": [[15, 15, 19, 15, 19, 19, 15, 19]]})
    mask = decode_coco_masks(data)["abcdefghijk_1000"]
    assert mask[2:8, 2:8].all() and mask[16:19, 16:19].all() and not mask[12, 12]


def test_coco_bad_input_names_the_problem(tmp_path):
    with pytest.raises(InputError, match="not found"):
        decode_coco_masks(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        decode_coco_masks(bad)
    data = _coco(np.ones((4, 4), bool))
    data["annotations"][0]["image_id"] = 99
    with pytest.raises(InputError, match="unknown image_id 99"):
        decode_coco_masks(data)
    data = _coco(np.ones((4, 4), bool))
    data["images"][0]["width"] = 5                 # the RLE was made for a 4x4 image
    with pytest.raises(InputError, match=r"annotation 0: cannot decode segmentation \(RLE size \[4, 4\]"):
        decode_coco_masks(data)
    with pytest.raises(InputError, match="'annotations'"):
        decode_coco_masks({"images": []})


def test_mask_to_grids():
    assert mask_to_grid(np.ones((300, 300), bool)).all()
    assert not mask_to_grid(np.zeros((300, 300), bool)).any()
    top_left = np.zeros((320, 320), bool)
    top_left[:160, :160] = True
    grid = mask_to_grid(top_left)
    assert grid.shape == (16, 16) and grid[:7, :7].all() and not grid[10:].any()
    assert not grid[:, 10:].any()
    square = mask_to_square(top_left)
    assert square.shape == (224, 224) and square[:112, :112].all() and not square[112:].any()
    # A 100x200 frame is centre-cropped to columns 50..149 first, as the test transform does.
    wide = np.zeros((100, 200), bool)
    wide[:, :50] = True
    assert center_square(wide).shape == (100, 100)
    assert not mask_to_grid(wide).any()
