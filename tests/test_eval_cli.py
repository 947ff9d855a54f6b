"""``llinet-eval`` end to end: a real (tiny, untrained) checkpoint on the synthetic media set."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from builder.manifest.schema import read_manifest, write_manifest
from model.evaluation.cli import main
from model.network.checkpoint import save_checkpoint
from model.network.config import ModelConfig
from model.network.factory import build_model


def coco_for(clip_ids: list[str], size: int) -> dict:
    images, annotations = [], []
    for index, clip in enumerate(clip_ids):
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
        rle = mask_utils.encode(np.asfortranarray(mask))
        rle["counts"] = rle["counts"].decode("ascii")
        images.append({"id": index + 1, "file_name": f"{clip}.jpg", "height": size, "width": size})
        annotations.append({"id": index + 1, "image_id": index + 1, "category_id": 1,
                            "segmentation": rle, "area": int(mask.sum()), "iscrowd": 1})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval_synth")
    manifest_path = generate_synthetic_set(root, SyntheticSpec(n_train_classes=5, per_class=4,
                                                               image_size=64, seconds=0.5))
    manifest = read_manifest(manifest_path)
    # One clip of every train class becomes a seen-class test clip (for GZSL).
    held = manifest[manifest["split"] == "train"].groupby("class").head(1).index
    manifest.loc[held, "split"] = "test_seen"
    write_manifest(manifest, manifest_path)
    config = ModelConfig(backbone="resnet18", image_size=64, image_weights="none")
    torch.manual_seed(0)
    checkpoint = root / "ck.pt"
    save_checkpoint(checkpoint, {"config": config.to_dict(), "model": build_model(config).state_dict(),
                                 "epoch": 0, "sample_rate": 16000})
    masked = manifest[manifest["split"].isin(["test", "val_unseen"])]["clip_id"].tolist()
    masks = root / "masks.json"
    masks.write_text(json.dumps(coco_for(masked, 64)))
    other = root / "other_masks.json"
    other.write_text(json.dumps(coco_for(["zzzzzzzzzzz_0"], 64)))
    return {"root": root, "manifest": manifest_path, "checkpoint": checkpoint, "masks": masks,
            "other_masks": other}


def run(synthetic, tmp_path, *extra: str, masks: str | None = "masks") -> int:
    args = ["--checkpoint", str(synthetic["checkpoint"]), "--manifest", str(synthetic["manifest"]),
            "--report", str(tmp_path / "report"), "--workers", "0", "--draws", "50", "--overlays", "4"]
    if masks:
        args += ["--masks", str(synthetic[masks])]
    return main(args + list(extra))


def test_end_to_end_report_and_rerun_from_embeddings(synthetic, tmp_path, capsys):
    assert run(synthetic, tmp_path) == 0
    captured = capsys.readouterr()
    assert "embedding test" in captured.err            # tqdm progress bar on extraction
    report = tmp_path / "report"
    for name in ("metrics.json", "report.md", "embeddings.npz", "success_curves.png",
                 "confusion_matrix.png", "attention_overlays.png", "per_class.png"):
        assert (report / name).is_file(), name
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_clips"] == 8 and metrics["n_classes"] == 2
    assert metrics["localization"]["k_selected_on"].startswith("validation (val_unseen")
    assert metrics["gzsl"]["test_sets"] == ["test", "test_seen"]
    # No val_seen split in this manifest: a fixed sample of train clips stands in, and says so.
    assert metrics["gzsl"]["validation_sets"] == ["val_unseen", "train_sample"]
    assert metrics["gzsl"]["average_class"]["gamma_selected_on"] == "val_unseen + train_sample"
    for image in report.glob("*.png"):
        with Image.open(image) as png:
            assert png.format == "PNG"
    # Same metrics from the saved embeddings, without the model.
    rerun = tmp_path / "rerun"
    assert main(["--embeddings", str(report / "embeddings.npz"), "--masks", str(synthetic["masks"]),
                 "--report", str(rerun), "--draws", "50"]) == 0
    again = json.loads((rerun / "metrics.json").read_text())
    assert again["retrieval"] == metrics["retrieval"]
    assert again["localization"]["llinet"] == metrics["localization"]["llinet"]


def test_gzsl_calibrates_on_the_val_seen_split_when_present(synthetic, tmp_path):
    manifest = read_manifest(synthetic["manifest"])
    held = manifest[manifest["split"] == "train"].groupby("class").head(1).index
    manifest.loc[held, "split"] = "val_seen"            # as `llinet-build split --preset gzsl` writes
    with_val_seen = synthetic["root"] / "manifest_val_seen.csv"
    write_manifest(manifest, with_val_seen)
    assert main(["--checkpoint", str(synthetic["checkpoint"]), "--manifest", str(with_val_seen),
                 "--report", str(tmp_path / "report"), "--workers", "0", "--draws", "10",
                 "--no-localization", "--no-progress"]) == 0
    gzsl = json.loads((tmp_path / "report" / "metrics.json").read_text())["gzsl"]
    assert gzsl["validation_sets"] == ["val_unseen", "val_seen"]
    assert gzsl["test_sets"] == ["test", "test_seen"]


def test_missing_masks_is_a_clear_error(synthetic, tmp_path, capsys):
    assert run(synthetic, tmp_path, masks=None) == 2
    assert "no segmentation masks: pass --masks" in capsys.readouterr().err
    assert run(synthetic, tmp_path, "--no-localization", masks=None) == 0


def test_masks_of_another_manifest(synthetic, tmp_path, capsys):
    assert run(synthetic, tmp_path, masks="other_masks") == 2
    assert "has no mask for any of the 8 'test' clips" in capsys.readouterr().err


def test_empty_split(synthetic, tmp_path, capsys):
    assert run(synthetic, tmp_path, "--split", "holdout") == 2
    err = capsys.readouterr().err
    assert "split 'holdout' is empty; splits present" in err and "'test': 8" in err


def test_checkpoint_from_another_config(synthetic, tmp_path, capsys):
    state = torch.load(synthetic["checkpoint"], weights_only=True)
    state["config"] = {**state["config"], "backbone": "resnet34"}
    bad = tmp_path / "other_config.pt"
    torch.save(state, bad)
    code = main(["--checkpoint", str(bad), "--manifest", str(synthetic["manifest"]),
                 "--report", str(tmp_path / "r"), "--no-localization", "--workers", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert "checkpoint weights do not fit its config (backbone resnet34" in err and str(bad) in err


def test_missing_media_listed(synthetic, tmp_path, capsys):
    manifest = pd.read_csv(synthetic["manifest"], dtype=str, keep_default_na=False)
    test_row = manifest.index[manifest["split"] == "test"][0]
    manifest.loc[test_row, "audio_path"] = "audio/missing.wav"
    broken = synthetic["root"] / "broken.csv"
    manifest.to_csv(broken, index=False)
    code = main(["--checkpoint", str(synthetic["checkpoint"]), "--manifest", str(broken),
                 "--report", str(tmp_path / "r"), "--no-localization", "--workers", "0"])
    assert code == 2
    assert "missing.wav" in capsys.readouterr().err
