"""llinet-train end to end on a tiny synthetic set (CPU): resume, logs, bad input, NaN stop."""
from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.training.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    manifest = generate_synthetic_set(root / "data", SyntheticSpec(n_train_classes=3, per_class=8, seconds=0.3,
                                                                    image_size=56, seed=5))
    return manifest, root / "cache"


def _args(manifest, cache, out, *extra) -> list[str]:
    return ["--manifest", str(manifest), "--out", str(out), "--cache-dir", str(cache), "--backbone", "resnet18",
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


def test_device_placement_trains_exactly_like_loader_workers(tiny_set, tmp_path, capsys) -> None:
    manifest, cache = tiny_set
    assert main(_args(manifest, cache, tmp_path / "host", "--epochs", "1", "--workers", "2",
                      "--data-placement", "host")) == 0
    assert "assembled on the host by DataLoader workers (--data-placement host)" in capsys.readouterr().err
    assert main(_args(manifest, cache, tmp_path / "device", "--epochs", "1")) == 0
    assert "assembled on the device (--data-placement auto)" in capsys.readouterr().err
    host, device = _load(tmp_path / "host" / "last.pt"), _load(tmp_path / "device" / "last.pt")
    for name, tensor in host["model"].items():
        assert torch.equal(tensor, device["model"][name]), name
    timing = ("samples_per_s", "epoch_seconds")
    assert [{k: v for k, v in row.items() if k not in timing} for row in host["history"]] == \
        [{k: v for k, v in row.items() if k not in timing} for row in device["history"]]


@pytest.mark.timeout(600)
def test_compiled_model_trains_like_eager(tiny_set, tmp_path) -> None:
    """--compile (TorchInductor; on a CPU it builds C++ kernels, ~1 min here) must not change the maths.

    Tolerance: Inductor's fused BatchNorm backward loses precision where the
    loss gradient cancels (measured here: the audio encoder's last BN bias
    gradient is 0.7% off an fp64 reference compiled, 2e-6 eager), so weights are
    compared relative to how far training moved them. The epoch's mean losses
    include the second step, taken after one such update: measured 1.6e-5
    relative apart on one CPU and exact on another, so 1e-4 (a kernel that got
    the maths wrong moves them by far more).
    """
    manifest, cache = tiny_set
    extra = ("--epochs", "1", "--max-steps-per-epoch", "2", "--lr", "0.01")
    assert main(_args(manifest, cache, tmp_path / "eager", *extra)) == 0
    assert main(_args(manifest, cache, tmp_path / "compiled", "--compile", *extra)) == 0
    eager, compiled = _load(tmp_path / "eager" / "last.pt"), _load(tmp_path / "compiled" / "last.pt")
    assert set(compiled["model"]) == set(eager["model"])  # compiled in place: the same checkpoint keys
    torch.manual_seed(200)  # as llinet-train: seed, then build the model
    initial = build_model(ModelConfig(backbone="resnet18", image_size=48, image_weights="none")).state_dict()
    moved = 0
    for name, tensor in eager["model"].items():
        if tensor.is_floating_point():
            update = (tensor - initial[name]).norm()
            moved += int(update > 0)
            assert (compiled["model"][name] - tensor).norm() <= 0.05 * update + 1e-6, name
    assert moved > 100  # trainable weights and BN running statistics did move
    for key in ("train_loss", "train_match", "train_attention"):
        assert compiled["history"][0][key] == pytest.approx(eager["history"][0][key], rel=1e-4), key


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
    err = capsys.readouterr().err     # progress and diagnostics are logged to stderr
    assert "warning: --skip-bad: dropped clips with 2 bad media file(s)" in err and "data: 22 train clips" in err
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
