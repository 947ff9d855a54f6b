"""The real stages end to end: FFmpeg-made videos -> trim -> frames -> curate -> annotate -> release -> verify / export.

Checks that release/verify/export read what the media stages really write
(columns, paths, status logs), and that a rebuild whose audio window was taken
at another offset (trim --policy center instead of first) fails verification.
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from builder.commands.main import main
from builder.demo.videos import SynthSpec, synth_clip
from builder.manifest.ids import make_clip_id
from builder.manifest.schema import write_manifest

CLIPS = (  # (class, mid, split, spec)
    ("Banjo", "/m/018j2", "train", SynthSpec(loud=(6.0, 9.0))),
    ("Piano", "/m/05r5c", "train", SynthSpec(duration=10.0, width=176, height=144, fps=15, loud=(1.0, 4.0))),
    ("Tabla", "/m/01p970", "test", SynthSpec(width=120, height=160, loud=(2.0, 5.0))),
)


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """A media root after fetch (synthetic videos in clips/), then the real trim and frames stages."""
    import pandas as pd

    root = tmp_path_factory.mktemp("pipeline") / "root"
    rows = []
    for n, (name, mid, split, spec) in enumerate(CLIPS):
        ytid = f"pipe{n:07d}"
        clip_id = make_clip_id(ytid, 0.0)
        synth_clip(root / "clips" / f"{clip_id}.mp4", spec)
        rows.append({"clip_id": clip_id, "ytid": ytid, "start": 0.0, "end": 10.0, "class": name, "mid": mid,
                     "split": split, "source": "test", "labels": mid, "rank": 0, "selected": True,
                     "fetch_status": "ok", "media_path": f"clips/{clip_id}.mp4"})
    write_manifest(pd.DataFrame(rows), root / "manifest.csv")
    for stage in ("trim", "frames"):
        assert main([stage, "--root", str(root), "--no-progress"]) == 0
    return root


def curate_and_annotate(root: Path, tmp_path: Path) -> None:
    """The real `curate` (a reviewer rejects the Piano clip) and `annotate import` (a PNG mask for Tabla)."""
    import pandas as pd
    from PIL import Image

    manifest = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False)
    piano = manifest.loc[manifest["class"] == "Piano", "clip_id"].iloc[0]
    decisions = tmp_path / "decisions.csv"
    decisions.write_text(f"clip_id,decision,reason,reviewer\n{piano},reject,not solo playing,ana\n")
    assert main(["curate", "--manifest", str(root / "manifest.csv"), "--decisions", str(decisions)]) == 0
    masks = tmp_path / "masks"
    masks.mkdir()
    for row in manifest[manifest["split"] == "test"].to_dict("records"):
        side = int(row["frame_size"])
        mask = np.zeros((side, side), np.uint8)
        mask[side // 4: side // 2, side // 3: 2 * side // 3] = 255
        Image.fromarray(mask).save(masks / f"{row['clip_id']}.png")
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(masks)]) == 0


def test_release_verify_export_on_real_stage_output(build, tmp_path, capsys):
    curate_and_annotate(build, tmp_path)
    release = tmp_path / "release"
    # no --date: today's, as the stages ran today (a release date before the data was made is refused)
    assert main(["release", "--version", "0.1.0", "--root", str(build), "--no-progress", "--out", str(release)]) == 0
    stats = json.loads((release / "stats.json").read_text())
    assert stats["totals"]["released"] == 2 and stats["totals"]["masks"] == 1
    assert stats["exclusions"] == {"curation rejected": 1} and stats["curation"]["rejected"] == 1
    assert stats["durations"]["audio_window_seconds"]["min"] == pytest.approx(3.0)
    prov = json.loads((release / "provenance.json").read_text())
    assert prov["stages"]["trim"]["params"][0]["policy"] == "first"        # what trim logged
    assert prov["stages"]["frames"]["params"][0]["frames_per_clip"] == 1
    report = tmp_path / "verify.json"
    assert main(["verify", "--release", str(release), "--root", str(build), "--no-progress", "--report",
                 str(report)]) == 0
    assert json.loads(report.read_text())["counts"]["identical"] == 2
    # the official layout from the same stage output
    out = tmp_path / "official"
    assert main(["export", "--root", str(build), "--layout", "llinet", "--no-progress", "--out", str(out)]) == 0
    with open(out / "traindata" / "test_image_files.pickle", "rb") as handle:  # our own export's index
        assert handle and pickle.load(handle) == ["test/Tabla/video/Tabla00001.jpg"]
    assert (out / "traindata" / "test" / "Tabla" / "segment" / "Tabla00001.jpg").is_file()
    capsys.readouterr()

    # A rebuild that cut its window elsewhere (centre of the segment instead of its start) is caught.
    shifted = tmp_path / "shifted"
    shutil.copytree(build, shifted)
    assert main(["trim", "--root", str(shifted), "--policy", "center", "--no-progress"]) == 0
    assert main(["frames", "--root", str(shifted), "--no-progress"]) == 0
    assert main(["verify", "--release", str(release), "--root", str(shifted), "--no-progress", "--report",
                 str(report)]) == 1
    result = json.loads(report.read_text())
    assert result["counts"]["different"] == 2, result["clips"]
    assert all("audio log-mel correlation" in c["reason"] for c in result["clips"])
