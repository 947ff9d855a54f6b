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


def _percent(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else 100.0 * v for v in values], dtype=float)


def success_curves(localization: dict[str, Any], path: str | os.PathLike) -> Path:
    """Share (%) of images with IoU >= t, for both protocols."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    llinet, lvs = localization["llinet"], localization["lvs"]
    grid = localization.get("grid", 16)
    ax.plot(llinet["thresholds"], _percent(llinet["curve"]),
            label=f"LLINet {grid}x{grid}, k={llinet['k']} (AUC {100 * llinet['auc']:.1f}%)")
    ax.plot(lvs["thresholds"], _percent(lvs["curve"]), "--",
            label=f"LVS 224x224, median thr. (AUC {100 * lvs['auc']:.1f}%)")
    ax.set_xlabel("IoU threshold t")
    ax.set_ylabel("success rate: images with IoU ≥ t (%)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 102)
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
                   path: str | os.PathLike, chance: dict[str, dict[str, float]] | None = None) -> Path:
    """Grouped bars in % (values given in [0, 1]): one group per class, one bar per column; a black
    tick on a bar marks that class's chance level for the column (``chance[class][column]``). The
    legend sits below the axes, where it cannot cover a bar."""
    classes = list(table)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(classes) + 2), 4.2))
    width = 0.8 / max(1, len(columns))
    marked = False
    for k, column in enumerate(columns):
        x = np.arange(len(classes)) + k * width
        values = _percent([table[c].get(column) for c in classes])
        ax.bar(x, np.nan_to_num(values), width, label=column)
        levels = _percent([(chance or {}).get(c, {}).get(column) for c in classes])
        if np.isfinite(levels).any():
            # "_" labels stay out of the legend: one "chance level" entry for all columns.
            ax.hlines(levels, x - width / 2, x + width / 2, colors="black", linewidth=1.5,
                      label="_chance" if marked else "chance level")
            marked = True
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=min(5, len(columns) + 1), loc="upper center", bbox_to_anchor=(0.5, -0.28),
              frameon=False)
    ax.set_title("Per-class results (test split)")
    return _save(fig, path)


def comparison_bars(columns: Sequence[str], methods: Sequence[str], published: Sequence[Sequence[float | None]],
                    ours: Sequence[Sequence[float | None]], spread: Sequence[Sequence[float | None]],
                    chance: Sequence[float | None], path: str | os.PathLike, title: str) -> Path:
    """One panel per column: for each method the published value (hatched) and ours (mean, with the
    seeds' standard deviation as an error bar), in %; a dashed line at the column's chance level.
    ``published``/``ours``/``spread`` are [method][column]; None = no number."""
    count = len(columns)
    fig, axes = plt.subplots(1, count, figsize=(max(4.0, 0.55 * len(methods) + 1.5) * count, 4.0), squeeze=False)
    x = np.arange(len(methods))
    for index, (ax, column) in enumerate(zip(axes[0], columns, strict=True)):
        paper = np.array([np.nan if row[index] is None else row[index] for row in published], dtype=float)
        mean = np.array([np.nan if row[index] is None else row[index] for row in ours], dtype=float)
        error = np.array([0.0 if row[index] is None else row[index] for row in spread], dtype=float)
        ax.bar(x - 0.2, np.nan_to_num(paper), 0.4, color="white", edgecolor="grey", hatch="//", label="published")
        ax.bar(x + 0.2, np.nan_to_num(mean), 0.4, yerr=np.where(np.isfinite(mean), error, 0.0), capsize=2,
               color="tab:blue", label="ours (mean ± std over seeds)")
        if chance[index] is not None:
            ax.axhline(chance[index], color="black", linestyle="--", linewidth=1, label="chance (our data)")
        ax.set_xticks(x, methods, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(column, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    # Above the panels: below them it would run into the rotated method names.
    fig.subplots_adjust(top=0.8)
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.84))
    fig.suptitle(title, fontsize=10, y=0.97)
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
