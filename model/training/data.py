"""Manifest-driven data for LLINet: media paths, epoch plans and batch datasets.

Every random choice of an epoch (image order, the audio clip paired with each
image, crop offsets, flips) is drawn up front from a generator seeded by
(seed, epoch): an epoch is then the same whatever the number of loader
workers or processes, and a resumed run replays it bit for bit.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from builder.errors import InputError
from builder.manifest.schema import read_manifest
from model.network.inputs import eval_image_transform, load_waveform  # noqa: F401 - re-exported API
from model.training.cache import MediaCache

MEDIA_REQUIRED = ("clip_id", "class", "split", "audio_path", "frame_path")
TRAIN_SPLIT = "train"
TEST_SPLITS = frozenset({"test", "test_seen"})  # never used for training or model selection
load_eval_image = eval_image_transform


def read_media_manifest(path: str | os.PathLike, media_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read a manifest with media columns; ``audio_path``/``frame_path`` become absolute.

    Relative media paths are resolved against ``media_root`` (default: the
    manifest's folder). Rows with ``selected`` False (ranked reserve) are dropped.
    """
    path = Path(path)
    df = read_manifest(path, required=MEDIA_REQUIRED)
    root = Path(media_root) if media_root is not None else path.parent
    # Reserve and rejected rows (selected == False) legitimately have no media: drop them first.
    if "selected" in df.columns:
        df = df[df["selected"].astype(bool)]
    for column in ("audio_path", "frame_path"):
        for index, value in zip(df.index, df[column].tolist(), strict=True):
            if not isinstance(value, str) or not value:
                raise InputError("empty media path", file=path, line=index + 2, field=column)
        df[column] = [str(p if Path(p).is_absolute() else (root / p)) for p in df[column]]
    return df.reset_index(drop=True)


def train_resize_size(image_size: int) -> int:
    """Resize before the random crop: 289 for 244 (= 244·76/64, as published).

    The cache stores Resize(289) + CenterCrop(289): identical to the official
    Resize(289) for the dataset's square frames; for non-square frames the
    random 244 crop then stays inside the central square.
    """
    return image_size * 76 // 64


@dataclass
class SplitData:
    """The usable rows of one split: cache row indices and integer class labels."""
    name: str
    cache: MediaCache
    rows: np.ndarray          # cache row index of each usable sample
    labels: np.ndarray        # int64 class index per usable sample
    class_names: list[str]

    def __len__(self) -> int:
        return len(self.rows)


def split_data(name: str, frame: pd.DataFrame, cache: MediaCache, skip_bad: bool) -> SplitData:
    """Usable rows of ``frame`` (in manifest order); bad media raise unless ``skip_bad``."""
    if cache.errors and not skip_bad:
        shown = "\n  ".join(cache.errors[:50])
        more = f"\n  ... and {len(cache.errors) - 50} more" if len(cache.errors) > 50 else ""
        raise InputError(f"{len(cache.errors)} bad media file(s) in split {name!r} "
                         f"(fix them or pass --skip-bad to drop those clips):\n  {shown}{more}")
    rows = np.flatnonzero(cache.ok)
    class_names = sorted(set(frame["class"].iloc[rows].tolist()))
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[c] for c in frame["class"].iloc[rows]], dtype=np.int64)
    return SplitData(name=name, cache=cache, rows=rows, labels=labels, class_names=class_names)


def epoch_plan(labels: np.ndarray, *, epoch: int, seed: int, batch_size: int, pairing: str,
               resized: int, crop: int, augment: bool = True) -> np.ndarray:
    """[steps, batch, 5] int64: (image sample, audio sample, crop top, crop left, flip).

    ``pairing='class'`` (published): each image gets a uniformly random audio clip of
    its class; ``'instance'``: its own clip. Incomplete last batch dropped.
    """
    if pairing not in ("class", "instance"):
        raise ValueError(f"pairing must be 'class' or 'instance', got {pairing!r}")
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    count = len(labels)
    order = torch.randperm(count, generator=generator).numpy()
    if pairing == "instance":
        audio = order.copy()
    else:
        labels_t = torch.from_numpy(labels)
        members = {int(c): torch.nonzero(labels_t == c).flatten() for c in np.unique(labels)}
        draws = torch.rand(count, generator=generator)
        audio = np.empty(count, dtype=np.int64)
        for position, sample in enumerate(order):
            pool = members[int(labels[sample])]
            audio[position] = int(pool[min(int(draws[position] * len(pool)), len(pool) - 1)])
    if augment:
        offsets = torch.randint(0, resized - crop + 1, (count, 2), generator=generator).numpy()
        flips = (torch.rand(count, generator=generator) < 0.5).numpy().astype(np.int64)
    else:
        offsets = np.full((count, 2), (resized - crop) // 2, dtype=np.int64)
        flips = np.zeros(count, dtype=np.int64)
    plan = np.stack([order, audio, offsets[:, 0], offsets[:, 1], flips], axis=1).astype(np.int64)
    steps = count // batch_size
    return plan[:steps * batch_size].reshape(steps, batch_size, 5)


class PlannedBatches(Dataset):
    """Item i = batch i of a plan, assembled from the memory-mapped cache."""

    def __init__(self, data: SplitData, plan: np.ndarray | list[np.ndarray], crop: int) -> None:
        self.data, self.plan, self.crop = data, plan, crop

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        spec = self.plan[step]
        crop, images_src = self.crop, self.data.cache.images
        images = np.empty((len(spec), 3, crop, crop), dtype=np.uint8)
        for k, (sample, _, top, left, flip) in enumerate(spec):
            patch = images_src[self.data.rows[sample], :, top:top + crop, left:left + crop]
            images[k] = patch[:, :, ::-1] if flip else patch
        audio_rows = self.data.rows[spec[:, 1]]
        order = np.argsort(audio_rows, kind="stable")  # sorted reads are kinder to the page cache
        waves = np.empty((len(spec), self.data.cache.waves.shape[1]), dtype=np.float32)
        waves[order] = self.data.cache.waves[audio_rows[order]]
        return {"images": torch.from_numpy(images), "waves": torch.from_numpy(waves).unsqueeze(1),
                "lengths": torch.from_numpy(np.asarray(self.data.cache.lengths[audio_rows], dtype=np.int64)),
                "labels": torch.from_numpy(self.data.labels[spec[:, 0]].copy()),
                "audio_labels": torch.from_numpy(self.data.labels[spec[:, 1]].copy())}


def sequential_plan(count: int, batch_size: int, resized: int, crop: int) -> list[np.ndarray]:
    """Evaluation plan: every sample once, in order, own clip, centre crop; last batch kept."""
    offset = (resized - crop) // 2
    rows = np.arange(count, dtype=np.int64)
    plan = np.stack([rows, rows, np.full(count, offset), np.full(count, offset), np.zeros(count, np.int64)],
                    axis=1)
    return [plan[i:i + batch_size] for i in range(0, count, batch_size)]
