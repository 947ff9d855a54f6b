"""From embeddings to every metric of ``llinet-eval`` (no model needed).

Inputs are :class:`~model.evaluation.embed.EmbeddingSet` s of the evaluated split
(unseen test classes), the validation split (held-out classes: chooses the
localisation threshold k and the GZSL calibration constant), and optionally
the seen-class test split and seen-class validation clips (``val_seen``, or a
fixed sample of train clips when the manifest has none) for GZSL. Test data
never chooses anything: a tuning set named like a test split is refused, and
the report's ``*_selected_on`` fields name the sets the choice was made on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from model.evaluation.embed import EmbeddingSet
from model.evaluation.metrics.localization import (
    LLINET_K_VALUES,
    llinet_localization,
    lvs_localization,
    select_llinet_k,
)
from model.evaluation.metrics.masks import mask_to_grid, mask_to_square
from model.evaluation.metrics.recognition import (
    calibrated_gzsl,
    confusion_matrix,
    encode_labels,
    prototype_distances,
    zero_shot_recognition,
)
from model.evaluation.metrics.retrieval import cosine_similarity, retrieval_metrics

#: k used when no validation image has a mask: fixed before looking at any data
#: (the official ``cal_iou`` default threshold 0.5 = k 5), never tuned on test.
A_PRIORI_K = 5
#: Split names that hold test data: never used to choose k or the GZSL constant.
TEST_SPLIT_NAMES = frozenset({"test", "test_seen"})


@dataclass
class EvalInputs:
    test: EmbeddingSet
    val: EmbeddingSet | None = None
    seen_test: EmbeddingSet | None = None
    seen_val: EmbeddingSet | None = None
    masks: dict[str, np.ndarray] | None = None   # clip id -> full-resolution boolean mask

    def check_tuning_sets(self) -> None:
        """Refuse a tuning set (val, seen_val) that is test data: the evaluated split or a test split."""
        for role, data in (("validation", self.val), ("seen-class validation", self.seen_val)):
            if data is None:
                continue
            if data is self.test or data.split == self.test.split or data.split in TEST_SPLIT_NAMES:
                raise ValueError(f"the {role} set {data.split!r} is test data: k and the GZSL constant "
                                 "must be chosen on validation splits")


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, dtype=float)]


def retrieval_section(test: EmbeddingSet, *, n_draws: int, seed: int) -> dict[str, Any]:
    """Cosine similarity (as the official evaluation), or the method's own scores (SCAN, ULSLVC),
    both directions, both protocols."""
    scores = test.scores if test.scores is not None else cosine_similarity(test.image, test.audio)
    return retrieval_metrics(scores, test.classes, test.classes, n_draws=n_draws, seed=seed)


def recognition_section(test: EmbeddingSet) -> tuple[dict[str, Any], dict[str, Any]]:
    """Zero-shot recognition over the evaluated split's classes; also the confusion matrix."""
    labels, classes = encode_labels(test.classes)
    n = len(classes)
    variants = {  # name: (metric, exclude_own)
        # Published: raw image embedding, Euclidean distance, own clip in its prototype.
        "published": ("euclidean", False),
        "euclidean_exclude_own": ("euclidean", True),
        "cosine": ("cosine", False),
    }
    out: dict[str, Any] = {"classes": classes}
    artefacts: dict[str, Any] = {}
    for name, (metric, exclude_own) in variants.items():
        result = zero_shot_recognition(test.image, test.audio, labels, labels, n, metric=metric,
                                       exclude_own=exclude_own)
        out[name] = {"metric": metric, "exclude_own": exclude_own, "accuracy": result["accuracy"],
                     "mean_class_accuracy": result["mean_class_accuracy"],
                     "per_class_accuracy": _json_floats(result["per_class_accuracy"])}
        if name == "published":
            artefacts["confusion"] = confusion_matrix(labels, result["predicted"], n)
            artefacts["recognition_classes"] = classes
    return out, artefacts


def _gzsl_block(unseen: EmbeddingSet, seen: EmbeddingSet, exclude_own: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seen_names = sorted(set(seen.classes.tolist()))
    unseen_names = sorted(set(unseen.classes.tolist()))
    overlap = set(seen_names) & set(unseen_names)
    if overlap:
        raise ValueError(f"classes {sorted(overlap)} are both seen and unseen")
    classes = seen_names + unseen_names
    images = np.concatenate([seen.image, unseen.image])
    audio = np.concatenate([seen.audio, unseen.audio])
    labels, _ = encode_labels(np.concatenate([seen.classes, unseen.classes]), classes)
    distances = prototype_distances(images, audio, labels, labels, len(classes),
                                    metric="euclidean", exclude_own=exclude_own)
    seen_mask = np.array([c in set(seen_names) for c in classes])
    return distances, labels, seen_mask


def gzsl_section(inputs: EvalInputs, *, exclude_own: bool = False) -> dict[str, Any]:
    """GZSL with calibrated stacking: gamma from validation, applied to test."""
    val, seen_val, seen_test = inputs.val, inputs.seen_val, inputs.seen_test
    if val is None or seen_val is None or seen_test is None or not (len(val) and len(seen_val) and len(seen_test)):
        missing = [name for name, value in (("seen-class test split", seen_test), ("validation split", val),
                                            ("seen-class validation clips", seen_val))
                   if value is None or len(value) == 0]
        return {"skipped": f"needs {', '.join(missing)}"}
    val_d, val_y, val_seen = _gzsl_block(val, seen_val, exclude_own)
    test_d, test_y, test_seen = _gzsl_block(inputs.test, seen_test, exclude_own)
    out: dict[str, Any] = {"metric": "euclidean", "exclude_own": exclude_own,
                           "validation_sets": [val.split, seen_val.split],
                           "test_sets": [inputs.test.split, seen_test.split]}
    tuned_on = f"{val.split} + {seen_val.split}"  # the very sets val_d was computed from
    for average in ("class", "sample"):
        out[f"average_{average}"] = calibrated_gzsl(val_d, val_y, val_seen, test_d, test_y,
                                                    test_seen, average=average, selected_on=tuned_on)
    return out


def _masks_for(data: EmbeddingSet, masks: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    rows = np.array([i for i, clip in enumerate(data.clip_ids) if str(clip) in masks], dtype=int)
    return rows, [masks[str(data.clip_ids[i])] for i in rows]


def localization_section(inputs: EvalInputs, iou_epsilon: float = 0.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """LLINet 16x16 (k from validation) and LVS 224x224 protocols on masked test images.

    ``iou_epsilon`` (LLINet protocol only): 1e-5 divides by union + 1e-5 as the official code.
    """
    if inputs.masks is None:
        return {"skipped": "no masks given"}, {}
    rows, masks = _masks_for(inputs.test, inputs.masks)
    if len(rows) == 0:
        raise ValueError(f"none of the {len(inputs.test)} {inputs.test.split!r} clips has a mask")
    maps = inputs.test.maps[rows]
    grid = maps.shape[1]
    masks_grid = np.stack([mask_to_grid(m, grid) for m in masks])
    masks_224 = np.stack([mask_to_square(m) for m in masks])
    out: dict[str, Any] = {"n_images": int(len(rows)), "n_split": int(len(inputs.test)),
                           "grid": int(grid), "iou_epsilon": float(iou_epsilon)}
    val = inputs.val
    val_rows: np.ndarray = np.array([], dtype=int)
    if val is not None:
        val_rows, val_masks = _masks_for(val, inputs.masks)
    if val is not None and len(val_rows):
        k, val_aucs = select_llinet_k(val.maps[val_rows], np.stack([mask_to_grid(m, grid) for m in val_masks]),
                                      iou_epsilon=iou_epsilon)
        out["k_selected_on"] = f"validation ({val.split}, {len(val_rows)} masked images)"
        out["validation_auc_by_k"] = {str(key): value for key, value in val_aucs.items()}
    else:
        k = A_PRIORI_K
        out["k_selected_on"] = ("a priori (no validation image has a mask): k = 5, the official "
                                "code's default threshold 0.5; not tuned on test")
    llinet = llinet_localization(maps, masks_grid, k, iou_epsilon)
    out["llinet"] = {"k": k, "miou": llinet["miou"], "auc": llinet["auc"],
                     "curve": _json_floats(llinet["curve"]),
                     "thresholds": _json_floats(llinet["thresholds"])}
    # Sensitivity only (never used to choose): how the test result moves with k.
    out["test_sensitivity_to_k"] = {
        str(kk): {key: llinet_localization(maps, masks_grid, kk, iou_epsilon)[key] for key in ("miou", "auc")}
        for kk in LLINET_K_VALUES}
    lvs = lvs_localization(maps, masks_224)
    out["lvs"] = {"mean_ciou": lvs["mean_ciou"], "success_at_0_5": lvs["success_at_0_5"],
                  "auc": lvs["auc"], "curve": _json_floats(lvs["curve"]),
                  "thresholds": _json_floats(lvs["thresholds"])}
    classes = inputs.test.classes[rows]
    out["per_class_miou"] = {str(c): float(llinet["ious"][classes == c].mean())
                             for c in sorted(set(classes.tolist()))}
    artefacts = {"loc_rows": rows, "loc_ious": llinet["ious"], "loc_cious": lvs["cious"],
                 "loc_masks_224": masks_224, "loc_k": k}
    return out, artefacts


def compute_metrics(inputs: EvalInputs, *, n_draws: int = 1000, seed: int = 0,
                    gzsl_exclude_own: bool = False, iou_epsilon: float = 0.0
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every metric (JSON-ready dict) and the arrays the plots need."""
    test = inputs.test
    if len(test) == 0:
        raise ValueError(f"split {test.split!r} is empty")
    inputs.check_tuning_sets()
    counts = {str(c): int(n) for c, n in zip(*np.unique(test.classes, return_counts=True), strict=True)}
    metrics: dict[str, Any] = {"split": test.split, "n_clips": int(len(test)),
                               "n_classes": len(counts), "clips_per_class": counts}
    metrics["retrieval"] = retrieval_section(test, n_draws=n_draws, seed=seed)
    metrics["recognition"], artefacts = recognition_section(test)
    metrics["gzsl"] = gzsl_section(inputs, exclude_own=gzsl_exclude_own)
    metrics["localization"], loc_artefacts = localization_section(inputs, iou_epsilon)
    artefacts.update(loc_artefacts)
    return metrics, artefacts
