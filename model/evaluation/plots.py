"""Figures of the evaluation report (matplotlib, Agg backend, PNG via atomic writes)."""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from builder.io.atomic import atomic_write_bytes  # noqa: E402
from model.network.inputs import MediaError, load_rgb, resize_center_crop  # noqa: E402


def _save(fig: Any, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def success_curves(localization: dict[str, Any], path: str | os.PathLike) -> Path:
    """Fraction of images with IoU >= t, for both protocols."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    llinet, lvs = localization["llinet"], localization["lvs"]
    ax.plot(llinet["thresholds"], llinet["curve"],
            label=f"LLINet 16x16, k={llinet['k']} (AUC {100 * llinet['auc']:.1f})")
    ax.plot(lvs["thresholds"], lvs["curve"], "--",
            label=f"LVS 224x224, median thr. (AUC {100 * lvs['auc']:.1f})")
    ax.set_xlabel("IoU threshold t")
    ax.set_ylabel("success rate (fraction with IoU ≥ t)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Sound localisation, {localization['n_images']} test images")
    return _save(fig, path)


def confusion_plot(confusion: np.ndarray, classes: Sequence[str], path: str | os.PathLike) -> Path:
    """Row-normalised confusion matrix with the counts written in."""
    counts = np.asarray(confusion)
    rows = counts.sum(1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    size = max(4.0, 0.6 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted (nearest audio prototype)")
    ax.set_ylabel("true class")
    ax.set_title("Zero-shot recognition (published protocol)")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the row")
    return _save(fig, path)


def per_class_bars(table: dict[str, dict[str, float]], columns: Sequence[str],
                   path: str | os.PathLike) -> Path:
    """Grouped bars: one group per class, one bar per column (values in [0, 1])."""
    classes = list(table)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(classes) + 2), 3.8))
    width = 0.8 / max(1, len(columns))
    for k, column in enumerate(columns):
        values = [table[c].get(column, np.nan) for c in classes]
        ax.bar(np.arange(len(classes)) + k * width, np.nan_to_num(values), width, label=column)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Per-class results")
    return _save(fig, path)


def _frame(path: str, size: int) -> np.ndarray | None:
    try:
        return resize_center_crop(load_rgb(path), size).transpose(1, 2, 0)
    except (MediaError, OSError, ValueError):
        return None


def pick_overlay_rows(classes: np.ndarray, count: int) -> list[int]:
    """Up to ``count`` rows, round-robin over classes in manifest order (deterministic)."""
    by_class: dict[str, list[int]] = {}
    for position, cls in enumerate(classes.tolist()):
        by_class.setdefault(cls, []).append(position)
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(v) for v in by_class.values()):
        for members in by_class.values():
            if depth < len(members) and len(picked) < count:
                picked.append(members[depth])
        depth += 1
    return picked


def heatmap_overlays(maps: np.ndarray, masks: np.ndarray | None, frame_paths: Sequence[str],
                     titles: Sequence[str], path: str | os.PathLike, size: int = 224) -> Path:
    """Frame + upsampled attention map (+ outline of ``masks``, size x size) per image."""
    count = len(maps)
    columns = min(4, max(1, count))
    rows = (count + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.2 * rows), squeeze=False)
    upsampled = F.interpolate(torch.as_tensor(np.asarray(maps, np.float32))[:, None], size=(size, size),
                              mode="bilinear", align_corners=True)[:, 0].numpy()
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        heat = upsampled[index]
        span = heat.max() - heat.min()
        heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
        frame = _frame(frame_paths[index], size) if index < len(frame_paths) else None
        if frame is not None:
            ax.imshow(frame)
            ax.imshow(heat, cmap="jet", alpha=0.45)
        else:
            ax.imshow(heat, cmap="jet")
        if masks is not None and masks[index].any() and masks[index].shape == heat.shape:
            ax.contour(masks[index].astype(float), levels=[0.5], colors="white", linewidths=1.2)
        ax.set_title(titles[index], fontsize=8)
    fig.suptitle("Attention maps (jet, min-max normalised) and ground-truth mask outline (white)", fontsize=9)
    return _save(fig, path)
