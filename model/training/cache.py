"""Decode-once media cache: resized frames and fixed-length mono waveforms in
memory-mapped ``.npy`` files.

The cache folder name is a hash of every input that affects its content (clip
IDs, file paths, sizes and mtimes, image size, sample rate, clip length, format
version), so a changed manifest, file or option builds a new cache instead of
reusing a stale one. A cache is built in a temp folder and renamed into place,
so a killed build never leaves a half-written cache behind. Files that fail to
decode are recorded (``ok`` = False and an error line) rather than aborting.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from model.network.inputs import MediaError, load_rgb, load_waveform, resize_center_crop

CACHE_FORMAT = 2  # 2: lengths.npy (samples of each clip before padding)


@dataclass(frozen=True)
class CacheSpec:
    image_size: int       # frames are resized (shorter side) and centre-cropped to this square
    sample_rate: int      # waveforms are resampled to this rate
    clip_samples: int     # and zero-padded / cut to this length


@dataclass
class MediaCache:
    root: Path
    clip_ids: list[str]
    images: np.ndarray    # uint8 [N, 3, S, S] (memory-mapped)
    waves: np.ndarray     # float32 [N, clip_samples] mono (memory-mapped)
    lengths: np.ndarray   # int64 [N]: samples of each clip before zero padding (<= clip_samples)
    ok: np.ndarray        # bool [N]: False where a file failed to decode
    errors: list[str]     # one line per bad file
    spec: CacheSpec


def fit_length(wave: np.ndarray, samples: int) -> np.ndarray:
    if wave.shape[-1] >= samples:
        return wave[..., :samples]
    return np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(0, samples - wave.shape[-1])])


def decode_audio(path: str, spec: CacheSpec) -> np.ndarray:
    return decode_audio_with_length(path, spec)[0]


def decode_audio_with_length(path: str, spec: CacheSpec) -> tuple[np.ndarray, int]:
    """(mono wave fitted to ``spec.clip_samples``, samples of the clip before zero padding)."""
    wave, rate = load_waveform(path)
    mono = wave.mean(axis=0, dtype=np.float64).astype(np.float32)  # float64: no overflow when mixing
    if rate != spec.sample_rate:
        mono = AF.resample(torch.from_numpy(mono), rate, spec.sample_rate).numpy()
    length = min(mono.shape[-1], spec.clip_samples)
    return fit_length(mono, spec.clip_samples).astype(np.float32, copy=False), length


def keep_item(item: tuple) -> tuple:
    """The loader's collate for :class:`DecodedClips` items: as they are (numpy arrays, None, error
    lines), not converted to tensors. A module-level function, not a lambda: loader workers started
    with ``spawn`` or ``forkserver`` (macOS and Windows, and Python 3.14's Linux default) get the
    collate function pickled, and a lambda cannot be."""
    return item


class DecodedClips(Dataset):
    """Per clip: (index, frame uint8 [3,S,S], mono wave [T], errors, samples before padding); a file
    that fails to decode gives None and an error line instead of an exception. Used by the cache
    build and ``llinet-eval``."""

    def __init__(self, audio_files: list[str], frame_files: list[str], spec: CacheSpec) -> None:
        self.audio_files, self.frame_files, self.spec = audio_files, frame_files, spec

    def __len__(self) -> int:
        return len(self.audio_files)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, np.ndarray | None, list[str], int]:
        errors, image, wave, length = [], None, None, 0
        try:
            image = resize_center_crop(load_rgb(self.frame_files[index]), self.spec.image_size)
        except MediaError as exc:
            errors.append(str(exc))
        try:
            wave, length = decode_audio_with_length(self.audio_files[index], self.spec)
        except MediaError as exc:
            errors.append(str(exc))
        return index, image, wave, errors, length


def _file_signature(path: str) -> list:
    try:
        stat = os.stat(path)
        return [path, stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [path, None, None]


def cache_key(clip_ids: list[str], audio_files: list[str], frame_files: list[str], spec: CacheSpec) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": CACHE_FORMAT, "spec": asdict(spec)}, sort_keys=True).encode())
    for clip_id, audio, frame in zip(clip_ids, audio_files, frame_files, strict=True):
        digest.update(json.dumps([clip_id, _file_signature(audio), _file_signature(frame)]).encode())
    return digest.hexdigest()[:24]


def _open(root: Path, clip_ids: list[str]) -> MediaCache:
    meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    return MediaCache(root=root, clip_ids=clip_ids,
                      images=np.load(root / "images.npy", mmap_mode="r"),
                      waves=np.load(root / "waves.npy", mmap_mode="r"), lengths=np.load(root / "lengths.npy"),
                      ok=np.load(root / "ok.npy"), errors=list(meta["errors"]),
                      spec=CacheSpec(**meta["spec"]))


def open_or_build_cache(cache_root: str | os.PathLike, clip_ids: list[str], audio_files: list[str],
                        frame_files: list[str], spec: CacheSpec, workers: int = 0,
                        progress: bool = True, label: str = "cache") -> MediaCache:
    """Open the cache for exactly these inputs, building it first if needed."""
    root = Path(cache_root) / cache_key(clip_ids, audio_files, frame_files, spec)
    if (root / "meta.json").is_file():
        return _open(root, clip_ids)
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        count, size = len(clip_ids), spec.image_size
        images = np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (count, 3, size, size))
        waves = np.lib.format.open_memmap(tmp / "waves.npy", "w+", np.float32, (count, spec.clip_samples))
        ok = np.zeros(count, dtype=bool)
        lengths = np.zeros(count, dtype=np.int64)
        errors: list[str] = []
        # torch's stub types collate_fn for batches (a list); with batch_size=None it gets one item.
        loader = DataLoader(DecodedClips(audio_files, frame_files, spec), batch_size=None,
                            num_workers=workers, collate_fn=keep_item)  # type: ignore[arg-type]
        for index, image, wave, item_errors, length in tqdm(loader, total=count, desc=f"decoding {label}",
                                                            unit="clip", disable=not progress):
            if item_errors:
                errors.extend(f"{clip_ids[index]}: {e}" for e in item_errors)
                continue
            images[index] = image
            waves[index] = wave
            lengths[index] = length
            ok[index] = True
        images.flush()
        waves.flush()
        del images, waves
        np.save(tmp / "ok.npy", ok)
        np.save(tmp / "lengths.npy", lengths)
        meta = {"format": CACHE_FORMAT, "spec": asdict(spec), "count": count, "errors": errors}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished the same cache first
            if not (root / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _open(root, clip_ids)
