"""The model's DataLoaders work with spawned workers (macOS and Windows start workers that way, and
Python 3.14 uses forkserver on Linux): everything handed to a worker must pickle, so no lambdas."""
from __future__ import annotations

import multiprocessing
import pickle

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from PIL import Image

from model.evaluation.embed import extract_embeddings
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.training.batch_source import planned_batches
from model.training.cache import CacheSpec, DecodedClips, keep_item, open_or_build_cache
from model.training.data import PlannedBatches, epoch_plan, split_data

WORKERS = 2


@pytest.fixture
def spawn_by_default():
    """The loaders take the default start method; make it spawn for the test (then restore it)."""
    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    yield
    multiprocessing.set_start_method(previous, force=True)


def _media(folder, count: int) -> tuple[list[str], list[str], list[str]]:
    folder.mkdir()
    ids, audio, frames = [], [], []
    for i in range(count):
        ids.append(f"spawn{i:06d}_0")
        audio.append(str(folder / f"{i}.wav"))
        frames.append(str(folder / f"{i}.jpg"))
        soundfile.write(audio[-1], np.full((1600, 2), 0.01 * (i + 1)), 8000, subtype="PCM_16")
        Image.fromarray(np.full((40, 60, 3), 25 * i, dtype=np.uint8)).save(frames[-1])
    return ids, audio, frames


def test_what_the_workers_get_pickles(tmp_path):
    ids, audio, frames = _media(tmp_path / "media", 1)
    dataset = DecodedClips(audio, frames, CacheSpec(16, 8000, 1600))
    assert pickle.loads(pickle.dumps(keep_item)) is keep_item
    assert pickle.loads(pickle.dumps(dataset))[0][0] == 0


@pytest.mark.slow  # each spawned worker imports torch afresh
def test_cache_build_and_batches_with_spawned_workers(tmp_path, spawn_by_default):
    ids, audio, frames = _media(tmp_path / "media", 6)
    spec = CacheSpec(image_size=16, sample_rate=8000, clip_samples=1600)
    spawned = open_or_build_cache(tmp_path / "spawned", ids, audio, frames, spec, workers=WORKERS, progress=False)
    inline = open_or_build_cache(tmp_path / "inline", ids, audio, frames, spec, workers=0, progress=False)
    assert spawned.ok.all() and spawned.errors == []
    assert np.array_equal(spawned.images, inline.images) and np.array_equal(spawned.waves, inline.waves)

    data = split_data("train", pd.DataFrame({"class": list("AABBCC")}), spawned, skip_bad=False)
    plan = epoch_plan(data.labels, epoch=0, seed=3, batch_size=2, pairing="class", resized=16, crop=12)
    batches = planned_batches(data, plan, crop=12, placement="host", device=torch.device("cpu"), workers=WORKERS)
    expected = PlannedBatches(data, plan, crop=12)
    got = list(batches)
    assert len(got) == len(plan) == 3
    for step, batch in enumerate(got):
        for key, value in expected[step].items():
            assert torch.equal(batch[key], value), (step, key)


@pytest.mark.slow  # each spawned worker imports torch afresh
def test_embedding_extraction_with_spawned_workers(tmp_path, spawn_by_default):
    ids, audio, frames = _media(tmp_path / "media", 5)
    rows = pd.DataFrame({"clip_id": ids, "class": list("ABABA"), "frame_path": frames, "audio_path": audio})
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="resnet18", image_size=32, image_weights="none"))
    kwargs = dict(image_size=32, sample_rate=8000, clip_samples=1600, batch_size=2, progress=False)
    spawned = extract_embeddings(model, rows, "test", workers=WORKERS, **kwargs)
    inline = extract_embeddings(model, rows, "test", workers=0, **kwargs)
    assert spawned.clip_ids.tolist() == ids
    assert np.allclose(spawned.image, inline.image, atol=1e-5) and np.allclose(spawned.audio, inline.audio, atol=1e-5)
