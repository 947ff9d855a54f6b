"""llinet-train end to end on a tiny synthetic set (CPU): resume, logs, bad input, NaN stop."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from model.synthetic import SyntheticSpec, generate_synthetic_set
from model.train import main


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    manifest = generate_synthetic_set(root / "data", SyntheticSpec(n_train_classes=3, per_class=8, seconds=0.3,
                                                                    image_size=56, seed=5))
    return manifest, root / "cache"


def _args(manifest, cache, out, *extra) -> list[str]:
    return [str(manifest), "--output-dir", str(out), "--cache-dir", str(cache), "--backbone", "resnet18",
            "--image-size", "48", "--image-weights", "none", "--batch-size", "8", "--workers", "0",
            "--no-progress", "--log-every", "1", *extra]


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_equals_uninterrupted_run_bit_for_bit(tiny_set, tmp_path) -> None:
    manifest, cache = tiny_set
    extra = ("--lr-decay-every", "1", "--lr", "0.01")
    assert main(_args(manifest, cache, tmp_path / "straight", "--epochs", "2", *extra)) == 0
    assert main(_args(manifest, cache, tmp_path / "resumed", "--epochs", "1", *extra)) == 0
    assert _load(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    assert main(_args(manifest, cache, tmp_path / "resumed", "--epochs", "2", "--resume", *extra)) == 0
    straight, resumed = _load(tmp_path / "straight" / "last.pt"), _load(tmp_path / "resumed" / "last.pt")
    assert straight["epoch"] == resumed["epoch"] == 2
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    for index, group_state in straight["optimizer"]["state"].items():
        assert torch.equal(group_state["momentum_buffer"], resumed["optimizer"]["state"][index]["momentum_buffer"])
    assert straight["history"] == [{**row, "samples_per_s": straight["history"][i]["samples_per_s"],
                                    "epoch_seconds": straight["history"][i]["epoch_seconds"]}
                                   for i, row in enumerate(resumed["history"])]
    # Published schedule shape: the image lr decays (here every epoch), audio/transform lr stays.
    lrs = [(row["lr_image"], row["lr_audio"]) for row in straight["history"]]
    assert lrs == [(0.01, 0.01), (0.005, 0.01)]
    with open(tmp_path / "resumed" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["val_map"]) > 0
    assert list((tmp_path / "resumed" / "tb").glob("events.out.tfevents.*"))
    best = _load(tmp_path / "straight" / "best.pt")
    val_maps = [row["val_map"] for row in straight["history"]]
    assert best["epoch"] == 1 + int(np.argmax(val_maps)) and best["best"]["value"] == max(val_maps)
    # An existing run is never overwritten silently.
    assert main(_args(manifest, cache, tmp_path / "straight", "--epochs", "3")) == 2


def test_validation_on_test_split_is_refused(tiny_set, tmp_path, capsys) -> None:
    manifest, cache = tiny_set
    assert main(_args(manifest, cache, tmp_path / "o", "--val-split", "test")) == 2
    assert "model selection must use a validation split" in capsys.readouterr().err


def test_bad_media_are_listed_or_skipped(tiny_set, tmp_path, capsys) -> None:
    manifest, _ = tiny_set
    data = tmp_path / "data"
    shutil.copytree(manifest.parent, data)
    frame = pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)
    train = frame[frame["split"] == "train"]
    broken_jpg, missing_wav = data / train["frame_path"].iloc[0], data / train["audio_path"].iloc[1]
    broken_jpg.write_bytes(b"not a jpeg")
    missing_wav.unlink()
    args = _args(data / "manifest.csv", tmp_path / "cache", tmp_path / "o", "--epochs", "1")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2 bad media file(s)" in err and broken_jpg.name in err and missing_wav.name in err
    assert "--skip-bad" in err and not (tmp_path / "o" / "last.pt").exists()
    # The skip-bad run also exercises bf16 autocast + channels_last (training and validation).
    assert main(args + ["--skip-bad", "--precision", "bf16", "--channels-last"]) == 0
    out = capsys.readouterr().out
    assert "dropped clips with 2 bad media file(s)" in out and "data: 22 train clips" in out
    assert _load(tmp_path / "o" / "last.pt")["epoch"] == 1


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_set, tmp_path, capsys) -> None:
    manifest, _ = tiny_set
    data = tmp_path / "data"
    shutil.copytree(manifest.parent, data)
    args = _args(data / "manifest.csv", tmp_path / "cache", tmp_path / "o", "--pairing", "instance")
    assert main(args + ["--epochs", "1"]) == 0
    good = (tmp_path / "o" / "last.pt").read_bytes()
    # A float WAV of absurd (finite) samples: the power spectrum overflows, the loss turns NaN.
    frame = pd.read_csv(data / "manifest.csv", dtype=str, keep_default_na=False)
    victim = data / frame[frame["split"] == "train"]["audio_path"].iloc[0]
    soundfile.write(victim, np.full((4800, 2), 3e38, dtype=np.float32), 16000, subtype="FLOAT")
    assert main(args + ["--epochs", "2", "--resume"]) == 3
    err = capsys.readouterr().err
    assert "non-finite loss at epoch 2" in err and "Last good checkpoint kept" in err
    assert (tmp_path / "o" / "last.pt").read_bytes() == good
