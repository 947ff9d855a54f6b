"""Generated sections of DATASET.md, so the datasheet stays true to the committed manifests.

The text between ``<!-- composition:begin -->`` and ``<!-- composition:end -->`` is
produced by :func:`composition_markdown`; a test fails when it is stale, and
``python -m builder.release.datasheet`` rewrites it.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from builder.io.atomic import atomic_write_text
from builder.manifest.schema import read_manifest_dir
from builder.resources import committed_manifests

BEGIN, END = "<!-- composition:begin -->", "<!-- composition:end -->"


def composition_markdown(manifest_dir: str | Path) -> str:
    folder = Path(manifest_dir)
    df = read_manifest_dir(folder)
    report = json.loads((folder / "select_report.json").read_text())
    audit = json.loads((folder / "audit.json").read_text())
    sel = df[df["selected"]]
    lines = [
        f"Committed manifests (`{folder.name}`): **{len(sel):,} selected clips** in "
        f"{sel['class'].nunique()} classes — "
        + ", ".join(f"{split}: {n:,} clips / {sel.loc[sel['split'] == split, 'class'].nunique()} classes"
                    for split, n in sel["split"].value_counts().sort_index().items())
        + f" — and a ranked reserve of {int((~df['selected']).sum()):,} clips.",
        "",
        "| class | split | selected | reserve | eligible in AudioSet | dropped: ambiguous | dropped: leak |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    reserve = df[~df["selected"]].groupby("class").size()
    for name in report["per_class"]:
        stats = report["per_class"][name]
        lines.append(f"| {name} | {audit['class_groups'][name]} | {int((sel['class'] == name).sum())} | "
                     f"{int(reserve.get(name, 0))} | {stats.get('eligible', 0):,} | {stats.get('ambiguous', 0):,} | "
                     f"{stats.get('leak', 0):,} |")
    sources = sel["source"].value_counts().sort_index()
    lines += [
        "",
        "Selected clips by AudioSet list: " + ", ".join(f"{s} {n:,}" for s, n in sources.items()) + ".",
        f"Segment rows read: {sum(i['rows'] for i in report['inputs'].values()):,}; clips matching two or more "
        f"target classes (dropped as ambiguous): {report['totals'].get('ambiguous', 0):,}; segments under 3 s: "
        f"{report['totals'].get('too_short', 0):,}.",
        f"Audit: YouTube IDs shared across splits {audit['ytids_shared_across_splits']['selected_and_reserve']}, "
        f"clips carrying a held-out class's label {audit['clips_with_labels_of_held_out_classes']}, "
        f"classes in several groups {audit['classes_in_several_groups']} — "
        + ("passed." if audit["passed"] else "FAILED."),
    ]
    return "\n".join(lines)


def update_datasheet(datasheet: str | Path, manifest_dir: str | Path) -> bool:
    """Rewrite the generated section; returns True if the file changed."""
    path = Path(datasheet)
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{path}: markers {BEGIN} ... {END} not found")
    new = pattern.sub(lambda _: f"{BEGIN}\n{composition_markdown(manifest_dir)}\n{END}", text)
    if new != text:
        atomic_write_text(path, new)
    return new != text


if __name__ == "__main__":  # python -m builder.release.datasheet [DATASET.md] [MANIFEST_DIR]
    # DATASET.md lives in the source tree only (run this from a checkout); the manifests are the packaged ones.
    args: list[str | Path] = [*sys.argv[1:]] or [Path("DATASET.md"), committed_manifests()]
    print("updated" if update_datasheet(*args) else "up to date")
