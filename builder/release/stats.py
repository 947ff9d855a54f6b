"""Release statistics: ``stats.json``, the class-distribution figure, and DATASET.md's release-stats section.

``stats.json`` is computed from the release's ID manifest (``clips.csv``), so
the figure, the JSON and the datasheet section always describe the same rows.
The figure follows the paper's dataset figure: clips per class as bars, one
panel per split, and a pie of the split totals.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from builder.errors import InputError
from builder.io.atomic import atomic_write_text

SPLIT_ORDER = ("train", "val_seen", "test_seen", "val_unseen", "test")
COLOURS = {"train": "#3b75af", "test": "#ef8636", "val_seen": "#8cb8de", "test_seen": "#2f9e44",
           "val_unseen": "#f5b971"}
BEGIN, END = "<!-- release-stats:begin -->", "<!-- release-stats:end -->"


def split_order(splits: list[str]) -> list[str]:
    known = [s for s in SPLIT_ORDER if s in splits]
    return known + sorted(s for s in splits if s not in SPLIT_ORDER)


def _summary(values: pd.Series) -> dict[str, float]:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return {"count": 0}
    return {"count": int(values.size), "total": round(float(values.sum()), 3), "mean": round(float(values.mean()), 4),
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4)}


def compute_stats(ids: pd.DataFrame, version: str, date: str) -> dict[str, Any]:
    """Statistics of a release from its ID manifest (the columns written by :mod:`builder.release.build`)."""
    released = ids[ids["released"] == 1]
    splits = split_order(sorted(set(ids["split"].astype(str))))
    per_split = {}
    for split in splits:
        part = released[released["split"] == split]
        per_split[split] = {"clips": int(len(part)), "classes": int(part["class"].nunique()),
                            "masks": int(part["has_mask"].sum()),
                            "audio_seconds": round(float(part["audio_seconds"].sum()), 3),
                            "per_class": {str(k): int(v) for k, v in sorted(part["class"].value_counts().items())}}
    per_class = {}
    for name in sorted(set(ids["class"].astype(str))):
        rows = ids[ids["class"] == name]
        rel = rows[rows["released"] == 1]
        per_class[name] = {
            "split": ",".join(split_order(sorted(set(rows["split"].astype(str))))),
            "released": int(len(rel)), "masks": int(rel["has_mask"].sum()),
            "considered": int(len(rows)),
            "availability": {k: int(v) for k, v in sorted(rows["availability"].value_counts().items())},
            "excluded": {k: int(v) for k, v in sorted(rows.loc[rows["released"] == 0, "exclusion"]
                                                       .value_counts().items())},
        }
    availability = {k: int(v) for k, v in sorted(ids["availability"].value_counts().items())}
    checked = ids.loc[ids["availability"] != "not_checked", "availability"]
    dates = sorted(d for d in ids["checked_at"].astype(str) if d)
    curation = ids["curation"].astype(str)
    return {
        "version": version, "date": date,
        "totals": {"released": int(len(released)), "classes": int(released["class"].nunique()),
                   "considered": int(len(ids)), "masks": int(released["has_mask"].sum())},
        "per_split": per_split,
        "per_class": per_class,
        "availability": {**availability,
                         "available_fraction_of_checked": round(float((checked == "available").mean()), 4)
                         if len(checked) else None,
                         "checked_from": dates[0] if dates else None, "checked_to": dates[-1] if dates else None},
        "exclusions": {k: int(v) for k, v in sorted(ids.loc[ids["released"] == 0, "exclusion"]
                                                    .value_counts().items())},
        "curation": {**{k: int(v) for k, v in sorted(curation.replace("", "not_curated").value_counts().items())},
                     "reject_reasons": {k: int(v) for k, v in sorted(
                         ids.loc[curation.isin(["rejected", "auto_rejected"]), "curation_reason"].astype(str)
                         .value_counts().items())}},
        "durations": {"audio_window_seconds": _summary(released["audio_seconds"]),
                      "segment_seconds": _summary(released["end_seconds"] - released["start_seconds"]),
                      "window_offset_seconds": _summary(released["window_offset"]),
                      "frame_time_seconds": _summary(released["frame_time"])},
    }


def write_figure(stats: dict[str, Any], path: Path) -> None:
    """Bars of clips per class, one panel per split, plus a pie of the split totals (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from builder.io.atomic import atomic_open

    splits = [s for s in stats["per_split"] if stats["per_split"][s]["clips"]]
    counts = {s: stats["per_split"][s]["per_class"] for s in splits}
    widths = [max(1, len(counts[s])) for s in splits] + [max(4, len(splits) * 2)]
    fig, axes = plt.subplots(1, len(splits) + 1, figsize=(min(24, 3 + 0.45 * sum(widths)), 4.8),
                             gridspec_kw={"width_ratios": widths})
    for ax, split in zip(axes[:-1], splits, strict=True):  # the last axis holds the pie
        names = list(counts[split])
        values = [counts[split][c] for c in names]
        ax.bar(range(len(names)), values, color=COLOURS.get(split, "#777777"))
        ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=8)
        ax.set_title(f"{split} ({stats['per_split'][split]['clips']} clips)", fontsize=10)
        ax.set_ylabel("clips")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    totals = [stats["per_split"][s]["clips"] for s in splits]
    axes[-1].pie(totals, labels=[f"{s}\n{n}" for s, n in zip(splits, totals, strict=True)], autopct="%1.1f%%",
                 colors=[COLOURS.get(s, "#777777") for s in splits], startangle=90, counterclock=False)
    axes[-1].set_title("split totals", fontsize=10)
    fig.suptitle(f"INSTRUMENT-32CLASS rebuild {stats['version']}: {stats['totals']['released']} clips, "
                 f"{stats['totals']['classes']} classes", fontsize=11)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100, metadata={"Software": "llinet (matplotlib Agg)"})
    plt.close(fig)


def release_stats_markdown(stats: dict[str, Any]) -> str:
    """The DATASET.md section between the release-stats markers."""
    lines = [f"Release **{stats['version']}** ({stats['date']}): **{stats['totals']['released']:,} clips** in "
             f"{stats['totals']['classes']} classes, {stats['totals']['masks']:,} with a segmentation mask — "
             + ", ".join(f"{s}: {v['clips']:,} clips / {v['classes']} classes"
                         for s, v in stats["per_split"].items() if v["clips"]) + "."]
    avail = stats["availability"]
    fraction = avail.get("available_fraction_of_checked")
    lines.append(f"Availability when built ({avail.get('checked_from') or '?'} to {avail.get('checked_to') or '?'}): "
                 + ", ".join(f"{k} {v:,}" for k, v in avail.items()
                             if k in ("available", "unavailable", "failed", "not_checked"))
                 + (f" ({100 * fraction:.1f}% of checked clips available)." if fraction is not None else "."))
    window = stats["durations"]["audio_window_seconds"]
    if window.get("count"):
        lines.append(f"Audio: {window['total'] / 3600:.2f} h in {window['count']:,} windows of "
                     f"{window['min']:.2f}–{window['max']:.2f} s.")
    if stats["exclusions"]:
        lines.append("Not released: " + ", ".join(f"{k} {v:,}" for k, v in stats["exclusions"].items()) + ".")
    lines += ["", "| class | split | released | masks | considered | unavailable |", "|---|---|---:|---:|---:|---:|"]
    for name, item in stats["per_class"].items():
        lines.append(f"| {name} | {item['split']} | {item['released']} | {item['masks']} | {item['considered']} | "
                     f"{item['availability'].get('unavailable', 0)} |")
    return "\n".join(lines)


def update_release_stats(datasheet: str | Path, release_dir: str | Path) -> bool:
    """Rewrite DATASET.md's release-stats section from ``release_dir/stats.json``; True if it changed."""
    path = Path(datasheet)
    stats_path = Path(release_dir) / "stats.json"
    if not stats_path.is_file():
        raise InputError("release has no stats.json", file=stats_path)
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise InputError(f"markers {BEGIN} ... {END} not found", file=path)
    new = pattern.sub(lambda _: f"{BEGIN}\n{release_stats_markdown(stats)}\n{END}", text)
    if new != text:
        atomic_write_text(path, new)
    return new != text


if __name__ == "__main__":  # python -m builder.release.stats DATASET.md RELEASE_DIR
    import sys
    if len(sys.argv) != 3:
        sys.exit("usage: python -m builder.release.stats DATASET.md RELEASE_DIR")
    print("updated" if update_release_stats(sys.argv[1], sys.argv[2]) else "up to date")
