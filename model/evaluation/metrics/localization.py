"""Sound-source localisation metrics: the LLINet 16x16 protocol and LVS/EZ-VSL's.

LLINet protocol (Jia et al. 2020, official code ``steps/eva.py``):
the raw 16x16 attention map ``s`` is binarised as ``s > k * 0.1 * max(s)``
(k in 2..6), compared with the ground-truth mask shrunk to 16x16 and
binarised ``> 0``; IoU per image; AUC = mean over t = 0, 0.02, ..., 1 of the
fraction of images with IoU >= t (51 points). The official code picks k on
the test set; :func:`select_llinet_k` picks it on validation data, by the
official criterion (largest AUC). ``iou_epsilon`` = 1e-5 reproduces the
official IoU, inter / (union + 1e-5): an IoU exactly on a threshold j/50 then
falls just below it and fails (AUC up to ~0.005 lower); the default 0 counts it.

LVS / EZ-VSL protocol (Chen et al. CVPR 2021; Mo & Morgado ECCV 2022): the map
is upsampled to 224x224 (bilinear, align_corners=True, as EZ-VSL's test.py),
min-max normalised, and pixels >= the upper median are predicted; cIoU =
sum(pred*g) / (sum(g) + sum(pred*[g==0])); reported as mean cIoU, success
rate at cIoU >= 0.5, and the trapezoid area under the success curve over
t = 0, 0.05, ..., 1 (21 points).

Both AUCs approximate the integral of the success curve, which equals the
mean IoU; they land within about a point of it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LLINET_K_VALUES = (2, 3, 4, 5, 6)
LLINET_THRESHOLDS = np.round(np.arange(51) * 0.02, 10)
LVS_THRESHOLDS = np.round(np.arange(21) * 0.05, 10)
LVS_SIZE = 224
LLINET_GRID = 16
OFFICIAL_IOU_EPSILON = 1e-5


def _as_numpy(array: Any, dtype: Any = np.float64) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=dtype)


def _check_pairs(maps: np.ndarray, masks: np.ndarray) -> None:
    if maps.ndim != 3 or masks.ndim != 3:
        raise ValueError(f"expected (N, H, W) maps and masks, got {maps.shape} and {masks.shape}")
    if maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} differ in shape")
    if len(maps) == 0:
        raise ValueError("no images to evaluate")


def llinet_predict(maps: Any, k: float) -> np.ndarray:
    """Binary prediction ``s > k * 0.1 * max(s)`` per map (published rule, kept as is)."""
    values = _as_numpy(maps)
    peak = values.reshape(len(values), -1).max(axis=1)
    return values > (k * 0.1 * peak)[:, None, None]


def iou(predicted: np.ndarray, masks: np.ndarray, epsilon: float = 0.0) -> np.ndarray:
    """Per-image IoU of boolean (N, H, W) arrays; 0 where the union is empty.

    ``epsilon`` > 0 divides by (union + epsilon), as the official code does.
    """
    predicted = np.asarray(predicted, dtype=bool)
    masks = np.asarray(masks, dtype=bool)
    inter = (predicted & masks).reshape(len(masks), -1).sum(1)
    union = (predicted | masks).reshape(len(masks), -1).sum(1)
    if epsilon > 0:
        return inter / (union + epsilon)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def success_curve(ious: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Fraction of images with IoU >= t for each threshold t."""
    ious = np.asarray(ious, dtype=np.float64)
    if len(ious) == 0:
        raise ValueError("no images to evaluate")
    return (ious[None, :] >= np.asarray(thresholds)[:, None]).mean(axis=1)


def llinet_localization(maps: Any, masks16: Any, k: float, iou_epsilon: float = 0.0) -> dict[str, Any]:
    """LLINet protocol at a given k: mean IoU, 51-point AUC, success curve, IoUs."""
    values = _as_numpy(maps)
    masks = _as_numpy(masks16, dtype=bool)
    _check_pairs(values, masks)
    ious = iou(llinet_predict(values, k), masks, iou_epsilon)
    curve = success_curve(ious, LLINET_THRESHOLDS)
    return {"k": k, "miou": float(ious.mean()), "auc": float(curve.mean()),
            "curve": curve, "thresholds": LLINET_THRESHOLDS, "ious": ious}


def select_llinet_k(val_maps: Any, val_masks16: Any, k_values: Sequence[float] = LLINET_K_VALUES,
                    iou_epsilon: float = 0.0) -> tuple[float, dict[float, float]]:
    """Choose k by the largest AUC on VALIDATION maps (first k wins a tie).

    Returns the chosen k and the validation AUC of every candidate.
    """
    aucs = {k: llinet_localization(val_maps, val_masks16, k, iou_epsilon)["auc"] for k in k_values}
    best = max(aucs.values())
    return next(k for k in k_values if aucs[k] == best), aucs


def upsample_maps(maps: Any, size: int = LVS_SIZE, *, batch: int = 256) -> np.ndarray:
    """Bilinear upsampling (align_corners=True) of (N, h, w) maps to (N, size, size)."""
    values = torch.as_tensor(_as_numpy(maps, np.float32))
    out = np.empty((len(values), size, size), dtype=np.float32)
    for start in range(0, len(values), batch):
        chunk = values[start:start + batch, None]
        out[start:start + batch] = F.interpolate(chunk, size=(size, size), mode="bilinear",
                                                 align_corners=True)[:, 0].numpy()
    return out


def lvs_predict(maps_full: np.ndarray) -> np.ndarray:
    """Min-max normalise each map and keep pixels >= its upper median (EZ-VSL rule)."""
    flat = np.asarray(maps_full, dtype=np.float32).reshape(len(maps_full), -1)
    low = flat.min(1, keepdims=True)
    span = flat.max(1, keepdims=True) - low
    normalised = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1), flat)
    middle = flat.shape[1] // 2
    threshold = np.partition(normalised, middle, axis=1)[:, middle:middle + 1]
    return (normalised >= threshold).reshape(np.shape(maps_full))


def ciou(predicted: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """LVS cIoU = sum(pred*g) / (sum(g) + sum(pred*[g==0])); 0 on an empty denominator."""
    predicted = np.asarray(predicted, dtype=bool).reshape(len(masks), -1)
    truth = np.asarray(masks, dtype=bool).reshape(len(masks), -1)
    hits = (predicted & truth).sum(1)
    denominator = truth.sum(1) + (predicted & ~truth).sum(1)
    return np.where(denominator > 0, hits / np.maximum(denominator, 1), 0.0)


def trapezoid_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid-rule area under y(x) (x increasing)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def lvs_localization(maps: Any, masks224: Any, *, batch: int = 256) -> dict[str, Any]:
    """LVS/EZ-VSL protocol: mean cIoU, success@0.5, 21-point trapezoid AUC.

    ``maps`` are the low-resolution maps (N, h, w); ``masks224`` the
    ground-truth masks already at 224x224 (see masks.mask_to_square).
    """
    masks = _as_numpy(masks224, dtype=bool)
    values = _as_numpy(maps, np.float32)
    if masks.ndim != 3 or masks.shape[1:] != (LVS_SIZE, LVS_SIZE):
        raise ValueError(f"masks must be (N, {LVS_SIZE}, {LVS_SIZE}), got {masks.shape}")
    if values.ndim != 3 or len(values) != len(masks) or len(values) == 0:
        raise ValueError(f"maps {values.shape} do not pair with masks {masks.shape}")
    scores = np.empty(len(values))
    for start in range(0, len(values), batch):  # bounded memory: 224x224 floats per map
        stop = start + batch
        scores[start:stop] = ciou(lvs_predict(upsample_maps(values[start:stop], LVS_SIZE)),
                                  masks[start:stop])
    curve = success_curve(scores, LVS_THRESHOLDS)
    return {"mean_ciou": float(scores.mean()), "success_at_0_5": float(np.mean(scores >= 0.5)),
            "auc": trapezoid_auc(LVS_THRESHOLDS, curve), "curve": curve,
            "thresholds": LVS_THRESHOLDS, "cious": scores}


def llinet_protocol(val_maps: Any, val_masks16: Any, test_maps: Any, test_masks16: Any,
                    k_values: Sequence[float] = LLINET_K_VALUES) -> dict[str, Any]:
    """LLINet localisation on test with k chosen on validation (never on test)."""
    k, val_aucs = select_llinet_k(val_maps, val_masks16, k_values)
    result = llinet_localization(test_maps, test_masks16, k)
    result["k_selected_on"] = "validation"
    result["validation_auc_by_k"] = {str(key): value for key, value in val_aucs.items()}
    return result
