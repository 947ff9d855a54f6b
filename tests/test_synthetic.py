"""The learnable synthetic zero-shot set: layout, rule, no label leaks, videos, and learnability."""
from __future__ import annotations

import colorsys
import hashlib
import json
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from builder.demo.zeroshot_set import SyntheticSpec, class_layout, generate_synthetic_set, render_class_video
from builder.media.ffmpeg import ffprobe_argv
from model.network.checkpoint import model_from_checkpoint
from model.training.cli import main
from model.training.data import load_eval_image, load_waveform, read_media_manifest
from model.training.validation import retrieval_map

SMALL = SyntheticSpec(n_train_classes=4, per_class=3, seconds=0.25, image_size=48, seed=11)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def _digest(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_seeded_and_deterministic(tmp_path) -> None:
    generate_synthetic_set(tmp_path / "a", SMALL)
    generate_synthetic_set(tmp_path / "b", SMALL)
    generate_synthetic_set(tmp_path / "c", SyntheticSpec(**{**SMALL.__dict__, "seed": 12}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_unseen_classes_lie_between_train_classes() -> None:
    layout = class_layout(6)
    train = sorted(c.position for c in layout if c.split == "train")
    unseen = [c for c in layout if c.split != "train"]
    assert train[0] == 0.0 and train[-1] == 1.0 and len(train) == 6
    assert {c.split for c in unseen} == {"test", "val_unseen"}
    for cls in unseen:
        assert train[0] < cls.position < train[-1] and cls.position not in train


def test_rule_is_in_the_media_and_no_label_in_names(tmp_path) -> None:
    manifest = generate_synthetic_set(tmp_path / "s", SMALL)
    frame = read_media_manifest(manifest)
    assert set(frame["split"]) == {"train", "test", "val_unseen"}
    assert frame["class"].tolist() != sorted(frame["class"])            # row order carries no class order
    positions = {c.name: c.position for c in class_layout(SMALL.n_train_classes)}
    pitch, hue = {}, {}
    for row in frame.itertuples():
        for path in (row.audio_path, row.frame_path):
            assert row.clip_id in path and row._5 not in path                 # file name = clip id only
            assert b"synth" not in open(path, "rb").read()                    # no class name in the bytes
        wave, rate = load_waveform(row.audio_path)
        spectrum = np.abs(np.fft.rfft(wave.mean(0)))
        pitch.setdefault(row._5, []).append(np.argmax(spectrum[:len(spectrum) // 4]) * rate / wave.shape[1])
        pixels = np.asarray(Image.open(row.frame_path).convert("RGB")).reshape(-1, 3) / 255.0
        hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
        hue.setdefault(row._5, []).append(np.median(hsv[hsv[:, 1] > 0.6, 0]))
    order = sorted(positions, key=positions.get)
    # Within-class variation exists, the class mean of both cues rises with the class position.
    assert np.std(pitch[order[0]]) > 0 or np.std(hue[order[0]]) > 0
    assert np.all(np.diff([np.mean(pitch[c]) for c in order]) > 0)
    assert np.all(np.diff([np.mean(hue[c]) for c in order]) > 0)


def test_class_video_has_tone_and_picture(tmp_path) -> None:
    path = render_class_video(tmp_path / "-abcdefghij.mp4", 0.5, seed=3, seconds=2.0, fps=5, size=64)
    probe = subprocess.run(ffprobe_argv(path, "-show_entries", "stream=codec_type,codec_name,duration", "-of", "json"),
                           capture_output=True, text=True, check=True)
    streams = {s["codec_type"]: s for s in json.loads(probe.stdout)["streams"]}
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
    assert abs(float(streams["video"]["duration"]) - 2.0) < 0.3
    assert [p.name for p in tmp_path.iterdir()] == ["-abcdefghij.mp4"]      # temp files cleaned up


@pytest.mark.slow
def test_brief_cpu_training_retrieves_unseen_classes_above_chance(tmp_path) -> None:
    """3 unseen test classes with equal counts: chance R@1 = 1/3. Required: >= 0.55 in both
    directions (chance + 0.22) for the checkpoint picked on val_unseen; observed here: image->audio
    0.78 (1 thread) to 0.90 (2 threads), audio->image 1.0."""
    spec = SyntheticSpec(n_train_classes=6, per_class=32, seconds=0.5, image_size=80, seed=0)
    manifest = generate_synthetic_set(tmp_path / "data", spec)
    assert main([str(manifest), "--output-dir", str(tmp_path / "run"), "--backbone", "resnet18",
                 "--image-size", "64", "--image-weights", "none", "--batch-size", "16", "--lr", "0.005",
                 "--epochs", "8", "--workers", "0", "--no-progress"]) == 0
    model, config = model_from_checkpoint(tmp_path / "run" / "best.pt")
    test = read_media_manifest(manifest).query("split == 'test'")
    classes = sorted(set(test["class"]))
    labels = torch.tensor([classes.index(c) for c in test["class"]])
    chance = float(np.max(np.bincount(labels.numpy())) / len(labels))
    images = torch.stack([load_eval_image(p, config.image_size) for p in test["frame_path"]])
    waves = torch.stack([torch.from_numpy(load_waveform(p)[0]) for p in test["audio_path"]])
    with torch.no_grad():
        v, _ = model.embed_images(images)
        a = model.embed_audio(waves, spec.sample_rate)
    similarity = F.normalize(v, dim=1) @ a.T
    r1_image_to_audio = float((labels[similarity.argmax(1)] == labels).float().mean())
    r1_audio_to_image = float((labels[similarity.argmax(0)] == labels).float().mean())
    assert len(classes) == 3 and chance == pytest.approx(1 / 3)
    assert r1_image_to_audio >= chance + 0.22, (r1_image_to_audio, r1_audio_to_image)
    assert r1_audio_to_image >= chance + 0.22, (r1_image_to_audio, r1_audio_to_image)
    assert retrieval_map(v, a, labels, labels) > 0.6
