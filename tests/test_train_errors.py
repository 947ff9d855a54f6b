"""Mistakes users make with llinet-train and llinet-eval: each one exits 2 with a message that says
what is wrong and what to do, before any training or evaluation work is wasted."""
from __future__ import annotations

import pytest
import torch

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from builder.manifest.schema import read_manifest, write_manifest
from model.evaluation.cli import main as eval_main
from model.network.checkpoint import save_checkpoint
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.training.cli import main as train_main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    manifest = generate_synthetic_set(root / "data", SyntheticSpec(n_train_classes=3, per_class=6, seconds=0.25,
                                                                    image_size=48, seed=9))
    return manifest, root / "cache"


def _train(manifest, cache, out, *extra: str) -> list[str]:
    return ["--manifest", str(manifest), "--out", str(out), "--cache-dir", str(cache), "--backbone", "resnet18",
            "--image-size", "40", "--image-weights", "none", "--batch-size", "6", "--workers", "0",
            "--no-progress", "--epochs", "1", *extra]


def test_resume_without_a_checkpoint(tiny, tmp_path, capsys) -> None:
    manifest, cache = tiny
    assert train_main(_train(manifest, cache, tmp_path / "run", "--resume")) == 2
    err = capsys.readouterr().err
    assert f"--resume: {tmp_path / 'run' / 'last.pt'} does not exist" in err and "without --resume" in err
    assert not (tmp_path / "run" / "last.pt").exists()


def test_resume_with_changed_options(tiny, tmp_path, capsys) -> None:
    manifest, cache = tiny
    out = tmp_path / "run"
    assert train_main(_train(manifest, cache, out)) == 0
    first = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert train_main(_train(manifest, cache, out, "--resume", "--lr", "0.5", "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert "--resume with changed option(s): lr 0.001 -> 0.5" in err and "another --out" in err
    # Switching the recipe is a different experiment too, named switch by switch.
    assert train_main(_train(manifest, cache, out, "--resume", "--recipe", "official-code", "--epochs", "2")) == 2
    err = capsys.readouterr().err
    assert "recipe 'paper' -> 'official-code'" in err and "gate_softmax 'positions' -> 'batch'" in err
    assert (out / "last.pt").read_bytes() == first             # nothing was trained or overwritten
    # The same options (and a longer run) resume.
    assert train_main(_train(manifest, cache, out, "--resume", "--epochs", "2")) == 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_manifest_without_train_rows(tiny, tmp_path, capsys) -> None:
    manifest, cache = tiny
    frame = read_manifest(manifest)
    frame = frame[frame["split"] != "train"]
    no_train = manifest.parent / "no_train.csv"
    write_manifest(frame, no_train)
    assert train_main(_train(no_train, cache, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "no rows with split == 'train' to train on (splits present: ['test', 'val_unseen'])" in err
    assert "no_train.csv" in err


def test_fewer_usable_clips_than_the_batch(tiny, tmp_path, capsys) -> None:
    manifest, cache = tiny
    assert train_main(_train(manifest, cache, tmp_path / "run", "--batch-size", "32")) == 2
    err = capsys.readouterr().err
    assert "18 usable train clips < batch size 32" in err and "lower --batch-size" in err


def test_batch_not_divisible_by_the_processes(tiny, tmp_path, capsys, monkeypatch) -> None:
    manifest, cache = tiny
    # As torchrun --nproc_per_node 4 would set it; refused before joining any process group.
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert train_main(_train(manifest, cache, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "--batch-size 6 is not divisible by the 4 processes" in err and "multiple of 4" in err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert train_main(_train(manifest, cache, tmp_path / "run", "--recipe", "official-code")) == 2
    err = capsys.readouterr().err
    assert "--gate-softmax batch" in err and "run it in one process" in err


def test_eval_refuses_a_class_that_is_also_in_train(tiny, tmp_path, capsys) -> None:
    manifest, _ = tiny
    frame = read_manifest(manifest)
    leaked = frame[frame["split"] == "train"]["class"].iloc[0]
    moved = frame.index[(frame["class"] == leaked)][:2]
    frame.loc[moved, "split"] = "test"                       # two clips of a train class in test
    leaky = manifest.parent / "leaky.csv"
    write_manifest(frame, leaky)
    config = ModelConfig(backbone="resnet18", image_size=40, image_weights="none")
    checkpoint = tmp_path / "ck.pt"
    save_checkpoint(checkpoint, {"config": config.to_dict(), "model": build_model(config).state_dict(),
                                 "epoch": 0})
    assert eval_main(["--checkpoint", str(checkpoint), "--manifest", str(leaky), "--out", str(tmp_path / "r"),
                      "--no-localization", "--workers", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"class(es) ['{leaked}'] are in both 'train' and 'test': not a zero-shot split" in err
    assert "leaky.csv" in err and not (tmp_path / "r" / "metrics.json").exists()
