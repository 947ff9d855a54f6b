"""Zero-shot and generalised zero-shot image recognition with audio prototypes.

LLINet protocol (Jia et al. 2020 and their public code): the prototype of a
class is the mean audio embedding of its clips; each image goes to the nearest
prototype by Euclidean distance; accuracy is over samples. We add the
per-class mean top-1 accuracy of Xian et al. (TPAMI 2019, "Zero-Shot
Learning — A Comprehensive Evaluation of the Good, the Bad and the Ugly") and
GZSL with calibrated stacking (Chao et al., ECCV 2016): a constant ``gamma``
added to the distances of seen classes, tuned on validation data only.

Labels are integer class indices ``0..n_classes-1`` (see :func:`encode_labels`).
Distances are smaller-is-closer; ``argmin`` ties go to the lower class index.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

METRICS = ("euclidean", "cosine")


def encode_labels(labels: Iterable[Any], classes: Iterable[Any] | None = None) -> tuple[np.ndarray, list]:
    """Map class names to indices; ``classes`` fixes the order (default: sorted)."""
    values = list(labels)
    order = sorted(set(values)) if classes is None else list(classes)
    index = {c: i for i, c in enumerate(order)}
    unknown = sorted({str(v) for v in values if v not in index})
    if unknown:
        raise ValueError(f"labels not among the classes: {unknown}")
    return np.array([index[v] for v in values], dtype=np.int64), order


def class_prototypes(audio: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, d) mean audio embedding per class; NaN rows for empty classes."""
    audio = np.asarray(audio, dtype=np.float64)
    labels = np.asarray(labels)
    sums = np.zeros((n_classes, audio.shape[1]))
    np.add.at(sums, labels, audio)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _distances(images: np.ndarray, prototypes: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        sq = ((images ** 2).sum(1)[:, None] + (prototypes ** 2).sum(1)[None, :]
              - 2.0 * images @ prototypes.T)
        return np.sqrt(np.maximum(sq, 0.0))
    if metric == "cosine":
        img = images / np.maximum(np.linalg.norm(images, axis=1, keepdims=True), 1e-12)
        pro = prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)
        return 1.0 - img @ pro.T
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def prototype_distances(images: np.ndarray, audio: np.ndarray, image_labels: np.ndarray,
                        audio_labels: np.ndarray, n_classes: int, *, metric: str = "euclidean",
                        exclude_own: bool = False) -> np.ndarray:
    """(n_images, n_classes) distance of each image to each class prototype.

    With ``exclude_own`` the rows of ``images`` and ``audio`` must be paired
    (row i of both is the same clip): each image's own class prototype is then
    the mean of the OTHER clips of its class, so an image is never matched
    through its own soundtrack. A class with a single clip then has no
    prototype for that image (distance +inf). Classes without any audio get
    +inf for every image.
    """
    images = np.asarray(images, dtype=np.float64)
    audio = np.asarray(audio, dtype=np.float64)
    image_labels = np.asarray(image_labels)
    audio_labels = np.asarray(audio_labels)
    prototypes = class_prototypes(audio, audio_labels, n_classes)
    missing = np.isnan(prototypes).any(axis=1)
    distances = _distances(images, np.where(missing[:, None], 0.0, prototypes), metric)
    distances[:, missing] = np.inf
    if exclude_own:
        if len(images) != len(audio) or not np.array_equal(image_labels, audio_labels):
            raise ValueError("exclude_own needs paired rows: images and audio of the same clips "
                             "in the same order")
        counts = np.bincount(audio_labels, minlength=n_classes)[image_labels].astype(np.float64)
        own = prototypes[image_labels]
        with np.errstate(invalid="ignore", divide="ignore"):
            loo = (own * counts[:, None] - audio) / (counts[:, None] - 1.0)
        single = counts <= 1
        loo[single] = 0.0
        own_distance = _paired_distances(images, loo, metric)
        own_distance[single] = np.inf
        distances[np.arange(len(images)), image_labels] = own_distance
    return distances


def _paired_distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=1)
    na = np.maximum(np.linalg.norm(a, axis=1), 1e-12)
    nb = np.maximum(np.linalg.norm(b, axis=1), 1e-12)
    return 1.0 - (a * b).sum(1) / (na * nb)


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples predicted correctly."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("no samples")
    return float(np.mean(np.asarray(predicted) == labels))


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Top-1 accuracy of each class's samples; NaN for classes without samples."""
    labels = np.asarray(labels)
    correct = np.bincount(labels, weights=(np.asarray(predicted) == labels), minlength=n_classes)
    counts = np.bincount(labels, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return correct / counts


def mean_class_accuracy(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Xian et al.'s per-class mean top-1 over the classes that have samples."""
    per_class = per_class_accuracy(predicted, labels, n_classes)
    present = ~np.isnan(per_class)
    if not present.any():
        raise ValueError("no samples")
    return float(per_class[present].mean())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(true, predicted) counts."""
    flat = np.asarray(labels) * n_classes + np.asarray(predicted)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def zero_shot_recognition(images: np.ndarray, audio: np.ndarray, image_labels: np.ndarray,
                          audio_labels: np.ndarray, n_classes: int, *, metric: str = "euclidean",
                          exclude_own: bool = False) -> dict[str, Any]:
    """Nearest-prototype recognition: accuracy, per-class mean, predictions."""
    distances = prototype_distances(images, audio, image_labels, audio_labels, n_classes,
                                    metric=metric, exclude_own=exclude_own)
    predicted = distances.argmin(axis=1)
    return {
        "accuracy": accuracy(predicted, image_labels),
        "mean_class_accuracy": mean_class_accuracy(predicted, image_labels, n_classes),
        "per_class_accuracy": per_class_accuracy(predicted, image_labels, n_classes),
        "predicted": predicted,
        "distances": distances,
    }


def harmonic_mean(seen: float, unseen: float) -> float:
    """H = 2su/(s+u); 0 when both are 0 (not NaN)."""
    total = seen + unseen
    return 0.0 if total <= 0 else float(2.0 * seen * unseen / total)


def gzsl_predict(distances: np.ndarray, seen_classes: np.ndarray, gamma: float) -> np.ndarray:
    """Calibrated stacking: add ``gamma`` to seen-class distances, then nearest.

    ``seen_classes`` is a boolean mask over the classes. A positive gamma
    moves predictions towards unseen classes.
    """
    seen_classes = np.asarray(seen_classes, dtype=bool)
    return (np.asarray(distances) + gamma * seen_classes[None, :]).argmin(axis=1)


def _group_accuracy(predicted: np.ndarray, labels: np.ndarray, group: np.ndarray,
                    n_classes: int, average: str) -> float:
    member = group[labels]
    if not member.any():
        return float("nan")
    if average == "sample":
        return accuracy(predicted[member], labels[member])
    if average == "class":
        return mean_class_accuracy(predicted[member], labels[member], n_classes)
    raise ValueError(f"average must be 'class' or 'sample', got {average!r}")


def gzsl_scores(distances: np.ndarray, labels: np.ndarray, seen_classes: np.ndarray,
                gamma: float = 0.0, *, average: str = "class") -> dict[str, float]:
    """GZSL accuracy on seen-class and unseen-class samples, and their harmonic mean.

    The search space is every column of ``distances`` (seen + unseen classes).
    ``average='class'`` (default) is Xian et al.'s per-class mean top-1.
    """
    labels = np.asarray(labels)
    seen_classes = np.asarray(seen_classes, dtype=bool)
    predicted = gzsl_predict(distances, seen_classes, gamma)
    n_classes = len(seen_classes)
    seen = _group_accuracy(predicted, labels, seen_classes, n_classes, average)
    unseen = _group_accuracy(predicted, labels, ~seen_classes, n_classes, average)
    if np.isnan(seen) or np.isnan(unseen):
        raise ValueError("GZSL needs samples of both seen and unseen classes")
    return {"seen": seen, "unseen": unseen, "harmonic_mean": harmonic_mean(seen, unseen),
            "gamma": float(gamma)}


def tune_calibration(val_distances: np.ndarray, val_labels: np.ndarray, seen_classes: np.ndarray,
                     *, average: str = "class") -> tuple[float, dict[str, np.ndarray]]:
    """Pick gamma maximising the harmonic mean on VALIDATION data.

    Exact search: each sample switches from its nearest seen class to its
    nearest unseen class when gamma passes ``d_unseen - d_seen``, so the
    accuracies are step functions of gamma. We evaluate one gamma inside every
    step (midpoints of consecutive switch points, plus one beyond each end)
    and keep the best; among equally good gammas the one closest to 0 (the
    least calibration) wins. Returns (gamma, curve with the candidates).
    """
    d = np.asarray(val_distances, dtype=np.float64)
    labels = np.asarray(val_labels)
    seen_classes = np.asarray(seen_classes, dtype=bool)
    if seen_classes.all() or not seen_classes.any():
        raise ValueError("calibration needs both seen and unseen classes")
    n_classes = len(seen_classes)
    seen_idx, unseen_idx = np.flatnonzero(seen_classes), np.flatnonzero(~seen_classes)
    best_seen = seen_idx[d[:, seen_idx].argmin(1)]
    best_unseen = unseen_idx[d[:, unseen_idx].argmin(1)]
    switch = d[np.arange(len(d)), best_unseen] - d[np.arange(len(d)), best_seen]
    finite = np.unique(switch[np.isfinite(switch)])
    if len(finite) == 0:
        candidates = np.array([0.0])
    else:
        candidates = np.concatenate([[finite[0] - 1.0], (finite[1:] + finite[:-1]) / 2,
                                     [finite[-1] + 1.0]])
    # Accuracy as a step function: sample i is right with its seen guess while
    # gamma <= switch_i (ties go to the seen class), with its unseen guess after.
    right_seen = (best_seen == labels).astype(np.float64)
    right_unseen = (best_unseen == labels).astype(np.float64)
    weights = _sample_weights(labels, seen_classes, n_classes, average)
    order = np.argsort(switch, kind="stable")
    switched = np.searchsorted(switch[order], candidates, side="left")  # samples gone unseen
    delta = (weights * (right_unseen - right_seen))[order]
    groups = _group_of(labels, seen_classes)
    base = np.bincount(groups, weights=weights * right_seen, minlength=2)
    curves = []
    for group in (0, 1):  # 0 = seen-class samples, 1 = unseen-class samples
        gain = np.concatenate([[0.0], np.cumsum(np.where(groups[order] == group, delta, 0.0))])
        curves.append(base[group] + gain[switched])
    seen_acc, unseen_acc = curves
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(seen_acc + unseen_acc > 0, 2 * seen_acc * unseen_acc / (seen_acc + unseen_acc), 0.0)
    best = np.flatnonzero(np.isclose(h, h.max(), rtol=0, atol=1e-12))
    gamma = float(candidates[best[np.argmin(np.abs(candidates[best]))]])
    return gamma, {"gamma": candidates, "seen": seen_acc, "unseen": unseen_acc, "harmonic_mean": h}


def _group_of(labels: np.ndarray, seen_classes: np.ndarray) -> np.ndarray:
    return np.where(seen_classes[labels], 0, 1)


def _sample_weights(labels: np.ndarray, seen_classes: np.ndarray, n_classes: int,
                    average: str) -> np.ndarray:
    """Weights whose sum over correct samples of a group is that group's accuracy."""
    groups = _group_of(labels, seen_classes)
    if average == "sample":
        sizes = np.bincount(groups, minlength=2).astype(np.float64)
        if (sizes == 0).any():
            raise ValueError("calibration needs samples of both seen and unseen classes")
        return 1.0 / sizes[groups]
    if average != "class":
        raise ValueError(f"average must be 'class' or 'sample', got {average!r}")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    classes_per_group = np.bincount(_group_of(np.flatnonzero(present), seen_classes), minlength=2)
    if (classes_per_group == 0).any():
        raise ValueError("calibration needs samples of both seen and unseen classes")
    return 1.0 / (counts[labels] * classes_per_group[groups])


def calibrated_gzsl(val_distances: np.ndarray, val_labels: np.ndarray, val_seen_classes: np.ndarray,
                    test_distances: np.ndarray, test_labels: np.ndarray,
                    test_seen_classes: np.ndarray, *, selected_on: str, average: str = "class") -> dict[str, Any]:
    """GZSL on test with the stacking constant tuned on validation (never on test).

    ``selected_on`` names the data behind ``val_distances`` (e.g. the validation
    splits' names); the result reports it as ``gamma_selected_on``. Also reports
    the uncalibrated (gamma = 0) result for comparison.
    """
    gamma, _ = tune_calibration(val_distances, val_labels, val_seen_classes, average=average)
    result: dict[str, Any] = gzsl_scores(test_distances, test_labels, test_seen_classes, gamma,
                                         average=average)
    result["gamma_selected_on"] = selected_on
    result["validation"] = gzsl_scores(val_distances, val_labels, val_seen_classes, gamma,
                                       average=average)
    result["uncalibrated"] = gzsl_scores(test_distances, test_labels, test_seen_classes, 0.0,
                                         average=average)
    return result
