"""The README's main command, small: metadata demo + the whole media pipeline on synthetic videos."""
from __future__ import annotations

import json
import sys

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from builder.commands.main import main
from builder.manifest.schema import read_manifest


def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    # As after a plain `pip install llinet`: the extras' packages cannot be imported.
    for extra in ("ray", "mlcroissant", "datasets"):
        monkeypatch.setitem(sys.modules, extra, None)
    out = tmp_path / "demo"
    # Short, small videos: trim keeps a 3 s window and training uses 64 px crops, so 4 s at 96 px
    # exercise every stage as 10 s at 160 px do, at a third of the rendering time.
    assert main(["demo", "--out", str(out), "--per-class", "4", "--cap", "3", "--epochs", "1", "--no-progress",
                 "--video-seconds", "4", "--video-size", "96"]) == 0
    printed = capsys.readouterr().out
    assert "byte-identical to the committed manifests/instrument32/clips.csv: yes" in printed
    assert "audit: PASSED" in printed and "verify (" in printed and "PASSED" in printed

    syn = out / "synthetic"
    manifest = read_manifest(syn / "media" / "manifest.csv")
    selected = manifest[manifest["selected"]]
    # 11 classes x cap 3, each class refilled after its rank-1 video "disappeared from YouTube".
    assert len(selected) == 33 and selected.groupby("class").size().eq(3).all()
    gone = manifest[manifest["rank"] == 1]
    assert set(gone["fetch_status"]) == {"unavailable"} and (gone["replaced_by"] != "").all()
    # The "removed" videos were never rendered; the others are as long as asked.
    assert sorted(p.stem for p in (syn / "mirror").glob("*.mp4")) == sorted(set(manifest["ytid"]) - set(gone["ytid"]))
    assert (manifest["end"] - manifest["start"]).eq(4.0).all()
    assert set(selected["split"]) == {"train", "val_unseen", "test"}

    # Release: checksums over every file, and verify passed on the built media.
    release = syn / "release"
    listed = {line.split("  ", 1)[1] for line in (release / "SHA256SUMS").read_text().splitlines()}
    assert {"clips.csv", "annotations.json", "croissant.json", "stats.json"} <= listed
    verify = json.loads((syn / "verify_report.json").read_text())
    assert verify["passed"] is True

    # Masks are the exact disks: inside them the frame shows the disk's saturated colour.
    coco = json.loads((syn / "media" / "annotations.json").read_text())
    masked = {img["clip_id"] for img in coco["images"]}
    assert masked == set(selected.loc[selected["split"].isin(["test", "val_unseen"]), "clip_id"])
    ann = coco["annotations"][0]
    image = next(img for img in coco["images"] if img["id"] == ann["image_id"])
    mask = mask_utils.decode({"size": ann["segmentation"]["size"],
                              "counts": ann["segmentation"]["counts"].encode()}).astype(bool)
    frame = np.asarray(Image.open(syn / "media" / image["file_name"]).convert("HSV"))
    inner = mask.copy()  # away from the JPEG-blurred edge
    for shift in (3, -3):
        inner &= np.roll(mask, shift, 0) & np.roll(mask, shift, 1)
    assert inner.sum() > 50
    assert np.median(frame[..., 1][inner]) > 180 > np.median(frame[..., 1][~mask])

    # Training and evaluation produced a checkpoint and a report.
    assert (syn / "run" / "best.pt").is_file()
    metrics = json.loads((syn / "report" / "metrics.json").read_text())
    assert metrics["n_classes"] == 3 and (syn / "report" / "report.md").is_file()
    assert "zero-shot accuracy" in printed
