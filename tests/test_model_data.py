"""Media decoding, manifest reading, epoch plans and the decode-once cache."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from PIL import Image

from builder.errors import InputError
from builder.manifest.schema import write_manifest
from model.network.inputs import MediaError, eval_image_transform, load_waveform
from model.training.batch_source import (
    DeviceResidentBatches,
    choose_placement,
    cut_crops_gather,
    cut_crops_sliced,
    resident_bytes,
)
from model.training.cache import CacheSpec, cache_key, open_or_build_cache
from model.training.data import PlannedBatches, epoch_plan, read_media_manifest, split_data, train_resize_size


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"])
@pytest.mark.parametrize("channels", [1, 2])
def test_wav_reader_matches_libsndfile(tmp_path, subtype: str, channels: int) -> None:
    rng = np.random.default_rng(0)
    data = rng.uniform(-0.9, 0.9, (1000, channels))
    path = tmp_path / "x.wav"
    soundfile.write(path, data, 22050, subtype=subtype)
    ours, rate = load_waveform(path)
    reference, _ = soundfile.read(path, dtype="float32", always_2d=True)
    assert rate == 22050 and ours.shape == (channels, 1000) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference.T, atol=1e-7)


def test_non_wav_audio_falls_back_to_soundfile(tmp_path) -> None:
    path = tmp_path / "x.flac"
    soundfile.write(path, np.zeros((100, 2)), 8000)
    wave, rate = load_waveform(path)
    assert wave.shape == (2, 100) and rate == 8000


def test_bad_media_raise_errors_naming_the_file(tmp_path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(MediaError, match="junk.wav.*without fmt or data"):
        load_waveform(tmp_path / "junk.wav")
    with pytest.raises(MediaError, match="missing.wav.*cannot read"):
        load_waveform(tmp_path / "missing.wav")
    soundfile.write(tmp_path / "nan.wav", np.full((10, 1), np.nan), 8000, subtype="FLOAT")
    with pytest.raises(MediaError, match="NaN"):
        load_waveform(tmp_path / "nan.wav")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(MediaError, match="bad.jpg.*cannot decode image"):
        eval_image_transform(tmp_path / "bad.jpg")


def test_eval_transform_resize_crop_normalise(tmp_path) -> None:
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    image[:, :, 0] = 255
    Image.fromarray(image).save(tmp_path / "a.png")
    tensor = eval_image_transform(tmp_path / "a.png", 244)
    assert tensor.shape == (3, 244, 244)
    assert torch.allclose(tensor[0], torch.ones(244, 244)) and torch.allclose(tensor[1], -torch.ones(244, 244))


def _manifest(tmp_path, rows):
    frame = pd.DataFrame(rows)
    return write_manifest(frame, tmp_path / "m.csv")


def _row(i: int, cls: str, split: str, **extra) -> dict:
    ytid = f"abcdefghi{i:02d}"
    return {"clip_id": f"{ytid}_0", "ytid": ytid, "start": 0.0, "end": 1.0, "class": cls, "mid": "/m/x",
            "split": split, "source": "t", "labels": "/m/x", "audio_path": f"a/{ytid}.wav",
            "frame_path": f"f/{ytid}.jpg", **extra}


def test_manifest_paths_resolved_and_reserve_dropped(tmp_path) -> None:
    rows = [_row(0, "A", "train", selected=True), _row(1, "A", "train", selected=False)]
    rows[0]["audio_path"] = "/abs/x.wav"
    path = _manifest(tmp_path, rows)
    df = read_media_manifest(path)
    assert len(df) == 1 and df["audio_path"][0] == "/abs/x.wav"
    assert df["frame_path"][0] == str(tmp_path / "f" / "abcdefghi00.jpg")
    assert read_media_manifest(path, media_root="/m")["frame_path"][0] == "/m/f/abcdefghi00.jpg"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["frame_path"])
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="frame_path"):
        read_media_manifest(tmp_path / "bad.csv")


def test_epoch_plan_pairing_determinism_and_drop_last() -> None:
    labels = np.array([0] * 10 + [1] * 7 + [2] * 4)
    plan = epoch_plan(labels, epoch=3, seed=200, batch_size=4, pairing="class", resized=289, crop=244)
    assert plan.shape == (5, 4, 5)                      # 21 samples, batch 4: last partial batch dropped
    flat = plan.reshape(-1, 5)
    assert len(set(flat[:, 0])) == 20                   # each image at most once per epoch
    assert (labels[flat[:, 0]] == labels[flat[:, 1]]).all()
    assert (flat[:, 0] != flat[:, 1]).any()             # a random clip of the class, not always its own
    assert flat[:, 2].min() >= 0 and flat[:, 2:4].max() <= 45 and set(flat[:, 4]) == {0, 1}
    again = epoch_plan(labels, epoch=3, seed=200, batch_size=4, pairing="class", resized=289, crop=244)
    other = epoch_plan(labels, epoch=4, seed=200, batch_size=4, pairing="class", resized=289, crop=244)
    assert np.array_equal(plan, again) and not np.array_equal(plan, other)
    instance = epoch_plan(labels, epoch=0, seed=1, batch_size=7, pairing="instance", resized=289, crop=244)
    assert (instance[..., 0] == instance[..., 1]).all()
    assert train_resize_size(244) == 289


def _media(tmp_path, count: int, bad: set[int] = frozenset()) -> tuple[list, list, list]:
    ids, audio, frames = [], [], []
    (tmp_path / "media").mkdir(exist_ok=True)
    for i in range(count):
        ids.append(f"clip{i:07d}_0")
        audio.append(str(tmp_path / "media" / f"{i}.wav"))
        frames.append(str(tmp_path / "media" / f"{i}.jpg"))
        soundfile.write(audio[-1], np.full((1200 + 100 * i, 2), 0.01 * (i + 1)), 8000, subtype="PCM_16")
        Image.fromarray(np.full((40, 60, 3), 20 * i, dtype=np.uint8)).save(frames[-1])
        if i in bad:
            with open(frames[-1], "wb") as handle:
                handle.write(b"broken")
    return ids, audio, frames


def test_cache_contents_reuse_and_invalidation(tmp_path) -> None:
    ids, audio, frames = _media(tmp_path, 3)
    spec = CacheSpec(image_size=16, sample_rate=8000, clip_samples=1300)
    cache = open_or_build_cache(tmp_path / "cache", ids, audio, frames, spec, progress=False)
    assert cache.images.shape == (3, 3, 16, 16) and cache.waves.shape == (3, 1300)
    assert isinstance(cache.waves, np.memmap) and cache.ok.all() and cache.errors == []
    assert np.allclose(cache.waves[2], 0.03, atol=1e-4)          # stereo mixed to mono, cut to 1300
    assert np.allclose(cache.waves[0, 1200:], 0.0)                # 1200-sample clip zero-padded
    assert abs(int(cache.images[1].mean()) - 20) <= 1
    stamp = (cache.root / "meta.json").stat().st_mtime_ns
    again = open_or_build_cache(tmp_path / "cache", ids, audio, frames, spec, progress=False)
    assert again.root == cache.root and (cache.root / "meta.json").stat().st_mtime_ns == stamp
    assert cache_key(ids, audio, frames, CacheSpec(16, 16000, 1300)) != cache_key(ids, audio, frames, spec)
    os.utime(frames[0], ns=(1, 1))                                # a changed file: new cache
    assert cache_key(ids, audio, frames, spec) != cache.root.name
    assert cache_key(ids[:2], audio[:2], frames[:2], spec) != cache.root.name
    resampled = open_or_build_cache(tmp_path / "cache", ids, audio, frames, CacheSpec(16, 16000, 2600),
                                    progress=False)
    assert np.allclose(resampled.waves[2, 100:2400], 0.03, atol=2e-3)
    assert not list((tmp_path / "cache").glob("*.tmp-*"))


def test_bad_files_listed_or_skipped(tmp_path) -> None:
    ids, audio, frames = _media(tmp_path, 4, bad={1})
    os.unlink(audio[3])
    cache = open_or_build_cache(tmp_path / "cache", ids, audio, frames, CacheSpec(16, 8000, 1000),
                                workers=2, progress=False)
    assert cache.ok.tolist() == [True, False, True, False]
    assert len(cache.errors) == 2 and "1.jpg" in cache.errors[0] and "3.wav" in cache.errors[1]
    frame = pd.DataFrame({"class": ["A", "A", "B", "B"]})
    with pytest.raises(InputError, match=r"2 bad media file\(s\).*--skip-bad"):
        split_data("train", frame, cache, skip_bad=False)
    data = split_data("train", frame, cache, skip_bad=True)
    assert data.rows.tolist() == [0, 2] and data.labels.tolist() == [0, 1]


def test_planned_batches_crop_flip_and_pairing(tmp_path) -> None:
    ids, audio, frames = _media(tmp_path, 2)
    cache = open_or_build_cache(tmp_path / "cache", ids, audio, frames, CacheSpec(8, 8000, 1000), progress=False)
    data = split_data("train", pd.DataFrame({"class": ["A", "B"]}), cache, skip_bad=False)
    plan = np.array([[[0, 1, 2, 1, 1], [1, 0, 0, 0, 0]]])
    batch = PlannedBatches(data, plan, crop=4)[0]
    assert batch["images"].shape == (2, 3, 4, 4) and batch["waves"].shape == (2, 1, 1000)
    assert torch.equal(batch["images"][0], torch.from_numpy(cache.images[0, :, 2:6, 1:5][:, :, ::-1].copy()))
    assert torch.equal(batch["waves"][0, 0], torch.from_numpy(np.array(cache.waves[1])))
    assert batch["labels"].tolist() == [0, 1] and batch["audio_labels"].tolist() == [1, 0]


def test_device_resident_batches_equal_host_batches(tmp_path) -> None:
    ids, audio, frames = _media(tmp_path, 6, bad={2})
    cache = open_or_build_cache(tmp_path / "cache", ids, audio, frames, CacheSpec(12, 8000, 1000), progress=False)
    data = split_data("train", pd.DataFrame({"class": list("AABBCC")}), cache, skip_bad=True)
    plan = epoch_plan(data.labels, epoch=3, seed=7, batch_size=2, pairing="class", resized=12, crop=9)
    assert plan[:, :, 4].any() and not plan[:, :, 4].all()  # both flipped and unflipped crops are covered
    resident = DeviceResidentBatches(data, crop=9, device=torch.device("cpu"))
    host = PlannedBatches(data, plan, crop=9)
    for step, batch in enumerate(resident.iterate(plan)):
        expected = host[step]
        assert batch.keys() == expected.keys()
        for key, value in expected.items():
            assert value.dtype == batch[key].dtype and torch.equal(value, batch[key]), (step, key)
    assert resident_bytes(data) == 5 * (3 * 12 * 12 + 1000 * 4)
    # The CUDA path's single-gather crop equals the sliced crop used here.
    for spec in plan:
        spec_t = torch.from_numpy(spec)
        assert torch.equal(cut_crops_gather(resident.images, spec_t, 9), cut_crops_sliced(resident.images, spec_t, 9))


def test_data_placement_choice() -> None:
    assert choose_placement("auto", torch.device("cpu"), []) == "device"  # nothing to hold: fits
    assert choose_placement("host", torch.device("cpu"), []) == "host"
    assert choose_placement("device", torch.device("cpu"), []) == "device"
    with pytest.raises(ValueError, match="placement must be one of"):
        choose_placement("gpu", torch.device("cpu"), [])
