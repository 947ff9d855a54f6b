"""Embedding extraction for ``llinet-eval`` and the saved-embeddings format.

Extraction is the only step that needs the model: it turns one split's rows
into image embeddings v, audio embeddings a and the 16x16 localisation map of
each image with its own clip's audio. Everything after (metrics, report) works
on :class:`EmbeddingSet` arrays, so it can be tested with synthetic embeddings
and rerun from ``embeddings.npz`` without the model.

Preprocessing equals the trainer's validation path (model.network.inputs / model.training.cache):
frame resized (short side) and centre-cropped to the model's image size,
normalised with mean 0.5 / std 0.5; audio averaged to mono, resampled to the
checkpoint's sample rate and padded/cut to a fixed length.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from builder.errors import InputError
from builder.io.atomic import atomic_open
from model.network.inputs import normalise_images
from model.training.cache import CacheSpec, DecodedClips

NPZ_FIELDS = ("clip_ids", "classes", "image", "audio", "maps", "frame_paths")


@dataclass
class EmbeddingSet:
    """One split's embeddings, rows in manifest order."""

    split: str
    clip_ids: np.ndarray            # str [N]
    classes: np.ndarray             # str [N] class name per row
    image: np.ndarray               # float32 [N, D] image embedding v (raw head output)
    audio: np.ndarray               # float32 [N, D] audio embedding a (L2-normalised)
    maps: np.ndarray                # float32 [N, h, w] map s of each image with its own audio
    frame_paths: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    # float32 [N, N] image x audio retrieval scores of a method with its own similarity (SCAN's
    # cross attention, ULSLVC's dot product); None: cosine of image and audio.
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.clip_ids)
        for name in ("classes", "image", "audio", "maps"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"EmbeddingSet {self.split!r}: {name} has {len(getattr(self, name))} "
                                 f"rows, clip_ids has {n}")
        if self.scores is not None and self.scores.shape != (n, n):
            raise ValueError(f"EmbeddingSet {self.split!r}: scores of shape {self.scores.shape}, expected {(n, n)}")

    def __len__(self) -> int:
        return len(self.clip_ids)

    def subset(self, rows: np.ndarray, split: str | None = None) -> EmbeddingSet:
        paths = self.frame_paths[rows] if len(self.frame_paths) else self.frame_paths
        scores = None if self.scores is None else self.scores[np.ix_(rows, rows)]
        return EmbeddingSet(split or self.split, self.clip_ids[rows], self.classes[rows],
                            self.image[rows], self.audio[rows], self.maps[rows], paths, scores)


def save_embeddings(path: str | os.PathLike, sets: dict[str, EmbeddingSet],
                    meta: dict[str, Any] | None = None) -> Path:
    """Write every set into one ``.npz`` (plain arrays only; loads without pickle)."""
    arrays: dict[str, np.ndarray] = {"__splits__": np.array(list(sets), dtype=str)}
    for split, data in sets.items():
        for name in NPZ_FIELDS:
            value = getattr(data, name)
            arrays[f"{split}.{name}"] = value.astype(str) if value.dtype.kind in "OU" else value
        if data.scores is not None:
            arrays[f"{split}.scores"] = data.scores
    if meta:
        arrays["__meta_keys__"] = np.array(list(meta), dtype=str)
        arrays["__meta_values__"] = np.array([str(v) for v in meta.values()], dtype=str)
    with atomic_open(path, "wb") as handle:
        # numpy's stub lets **kwds reach allow_pickle (numpy >= 2.1); no key here is that name.
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return Path(path)


def load_embeddings(path: str | os.PathLike) -> dict[str, EmbeddingSet]:
    """Read what :func:`save_embeddings` wrote; errors name the file and field."""
    path = Path(path)
    if not path.is_file():
        raise InputError("embeddings file not found", file=path)
    try:
        with np.load(path, allow_pickle=False) as data:
            splits = [str(s) for s in data["__splits__"]]
            return {split: EmbeddingSet(split, **{name: data[f"{split}.{name}"] for name in NPZ_FIELDS},
                                        scores=data[f"{split}.scores"] if f"{split}.scores" in data.files else None)
                    for split in splits}
    except KeyError as exc:
        raise InputError(f"not an llinet embeddings file (missing {exc})", file=path) from exc
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read embeddings: {exc}", file=path) from exc


def _collate(items: list) -> list:
    return items


@torch.no_grad()
def _embed_batch(model: Any, images: np.ndarray, waves: np.ndarray, lengths: np.ndarray, sample_rate: int,
                 device: torch.device) -> tuple[Any, ...]:
    pixels = normalise_images(torch.from_numpy(images).to(device))
    audio_in = torch.from_numpy(waves).to(device).unsqueeze(1)  # [B, 1, T]
    v, local = model.embed_images(pixels)
    a = model.embed_audio(audio_in, sample_rate, torch.from_numpy(lengths).to(device))
    s = model.localization_map(local, a)
    if getattr(model, "own_similarity", False):   # a method ranking by more than (v, a) cosine
        pair = model.pair_features(pixels, audio_in, sample_rate, torch.from_numpy(lengths).to(device))
        return (v.float().cpu().numpy(), a.float().cpu().numpy(), s.float().cpu().numpy(),
                *(feature.float().cpu() for feature in pair))
    return (v.float().cpu().numpy(), a.float().cpu().numpy(), s.float().cpu().numpy())


def extract_embeddings(model: Any, rows: pd.DataFrame, split: str, *, image_size: int,
                       sample_rate: int, clip_samples: int, batch_size: int = 32,
                       device: str | torch.device = "cpu", workers: int = 0,
                       progress: bool = True, skip_bad: bool = False) -> EmbeddingSet:
    """Embed every row of ``rows`` (columns clip_id, class, frame_path, audio_path).

    Bad media: all undecodable files are listed in one :class:`InputError`
    (after the pass, so the user sees every bad file at once), unless
    ``skip_bad`` drops those clips. Batches are formed in row order, which
    matters for a model whose image gate normalises over the batch
    (``gate_softmax='batch'``).
    """
    if len(rows) == 0:
        raise InputError(f"split {split!r} has no rows to evaluate")
    missing = [p for column in ("frame_path", "audio_path") for p in rows[column] if not Path(p).is_file()]
    if missing and not skip_bad:
        shown = "\n  ".join(missing[:20])
        raise InputError(f"{len(missing)} media file(s) of split {split!r} do not exist "
                         f"(first {min(20, len(missing))}):\n  {shown}")
    device = torch.device(device)
    model.eval()
    spec = CacheSpec(image_size, sample_rate, clip_samples)
    dataset = DecodedClips(rows["audio_path"].tolist(), rows["frame_path"].tolist(), spec)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    kept: list[int] = []
    errors: list[str] = []
    parts = []
    clip_ids = rows["clip_id"].tolist()
    with tqdm(total=len(dataset), desc=f"embedding {split}", unit="clip", disable=not progress) as bar:
        for batch in loader:
            good = [item for item in batch if not item[3]]
            for index, _, _, item_errors, _ in batch:
                errors.extend(f"{clip_ids[index]}: {e}" for e in item_errors)
            if good:
                images = np.stack([item[1] for item in good])
                waves = np.stack([item[2] for item in good])
                lengths = np.array([item[4] for item in good], dtype=np.int64)
                parts.append(_embed_batch(model, images, waves, lengths, sample_rate, device))
                kept.extend(item[0] for item in good)
            bar.update(len(batch))
    if errors and not skip_bad:
        shown = "\n  ".join(errors[:50])
        raise InputError(f"{len(errors)} bad media file(s) in split {split!r} "
                         f"(fix them or pass --skip-bad):\n  {shown}")
    if not kept:
        raise InputError(f"no decodable clip in split {split!r}")
    order = np.array(kept)
    scores = None
    if parts and len(parts[0]) == 5:   # (image repr, audio repr) of every clip, in decoding order
        with torch.no_grad():
            scores = model.pair_scores(torch.cat([p[3] for p in parts]).to(device),
                                       torch.cat([p[4] for p in parts]).to(device)).float().cpu().numpy()
    return EmbeddingSet(
        split=split, clip_ids=np.array(clip_ids, dtype=str)[order],
        classes=rows["class"].to_numpy(dtype=str)[order],
        image=np.concatenate([p[0] for p in parts]), audio=np.concatenate([p[1] for p in parts]),
        maps=np.concatenate([p[2] for p in parts]),
        frame_paths=rows["frame_path"].to_numpy(dtype=str)[order], scores=scores)
