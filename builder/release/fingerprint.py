"""Compact content fingerprints of a clip's audio window and frame, and how to compare them.

A release cannot ship the media of YouTube videos it does not own, and a
rebuild never has the same bytes (YouTube re-encodes, our encoders differ), so
``verify`` compares *content*. The release carries, per clip:

* **audio**: the log-mel of the window as LLINet computes it (the authors' code:
  40 bands, 25 ms window, 10 ms hop, natural log of mel + 1e-6, librosa's
  Slaney mel), on the audio mixed to mono and resampled to 16 kHz so any
  rebuild's rate and channel count compare, then averaged over 5 hops: a
  40 x 60 matrix for 3 s (float16, 4.7 KB);
* **frame**: the frame in grey levels, box-downscaled to 32 x 32 (uint8, 1 KB).

Comparison (thresholds documented in :data:`THRESHOLDS`, measured in
``tests/test_verify.py`` and ``bench/release_verify.py``):

* audio -- each band's mean over time is removed before the Pearson
  correlation, so what must agree is the *time course* of the spectrum, not
  its overall shape or loudness (YouTube re-encodes change gain and cut highs,
  a window from another offset has the same instrument timbre but a different
  time course). A gain change leaves this unchanged. When a window hardly
  varies over time (a steady tone: centred std < 0.05 nats) the uncentred
  correlation is used instead. The durations must agree within 50 ms.
* frame -- the Pearson correlation of the 32 x 32 grey images and their mean
  absolute difference (0-255 levels); both must pass.
"""
from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FINGERPRINT_RATE = 16000
N_MELS = 40
N_FFT = 400            # 25 ms at 16 kHz
HOP = 160              # 10 ms
POOL = 5               # 50 ms per fingerprint column
FRAME_SIDE = 32
STEADY_STD = 0.05      # nats; below this the window is treated as steady
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

# Measured on 12 synthetic clips (bench/release_verify.py; notes every 0.2 s, moving shapes):
# re-encoded audio (AAC 48k / MP3 32k / Opus 24k, decoded at 44.1/22.05/48 kHz) correlates
# >= 0.95, the same source 0.1 s later <= 0.56, 0.25 s or more later <= 0.13, another clip
# <= 0.13; frames re-encoded at JPEG quality 20-60 and 0.5x-3.75x size correlate >= 0.97
# with MAD <= 4, another clip's frame <= 0.53 with MAD >= 11. Frames 0.2-0.5 s apart can
# look alike (0.86-0.97): the audio is what catches a time shift.
THRESHOLDS = {
    "audio_correlation": 0.80,   # min correlation of the time-centred log-mel fingerprints
    "audio_duration": 0.05,      # max |duration difference|, seconds
    "frame_correlation": 0.90,   # min Pearson correlation of the 32x32 grey frames
    "frame_mad": 16.0,           # max mean absolute difference of the 32x32 grey frames (0-255)
}


class FingerprintError(Exception):
    """A file that cannot be decoded."""


@dataclass(frozen=True)
class AudioPrint:
    logmel: np.ndarray        # [N_MELS, T] float32
    seconds: float


def _name(source: str | os.PathLike | bytes) -> str:
    return "(bytes)" if isinstance(source, (bytes, bytearray)) else Path(source).name


def audio_fingerprint(source: str | os.PathLike | bytes) -> AudioPrint:
    """The fingerprint of an audio file, given as a path or as its bytes (a tar member, a Parquet cell)."""
    import librosa
    import soundfile

    readable = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        data, rate = soundfile.read(readable, dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
        raise FingerprintError(f"cannot decode audio {_name(source)}: {exc}") from None
    if data.shape[0] == 0:
        raise FingerprintError(f"audio {_name(source)} has no samples")
    mono = data.mean(axis=1)
    if rate != FINGERPRINT_RATE:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=FINGERPRINT_RATE, res_type="soxr_hq")
    mel = librosa.feature.melspectrogram(y=mono, sr=FINGERPRINT_RATE, n_fft=N_FFT, hop_length=HOP,
                                         n_mels=N_MELS, power=2.0)
    logmel = np.log(mel + 1e-6)
    columns = logmel.shape[1] // POOL
    pooled = logmel[:, :columns * POOL].reshape(N_MELS, columns, POOL).mean(axis=2)
    return AudioPrint(pooled.astype(np.float32), data.shape[0] / float(rate))


def frame_fingerprint(source: str | os.PathLike | bytes, crop_square: bool = False) -> np.ndarray:
    """[32, 32] uint8 grey; ``crop_square`` first takes the centred square (of a full frame)."""
    from PIL import Image

    readable = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with Image.open(readable) as image:
            grey = image.convert("L")
            if crop_square:
                width, height = grey.size
                side = min(width, height)
                left, top = (width - side) // 2, (height - side) // 2
                grey = grey.crop((left, top, left + side, top + side))
            small = grey.resize((FRAME_SIDE, FRAME_SIDE), resample=Image.Resampling.BOX)
            return np.asarray(small, dtype=np.uint8).copy()
    except OSError as exc:
        raise FingerprintError(f"cannot decode image {_name(source)}: {exc}") from None


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else (1.0 if np.allclose(a, b) else 0.0)


def audio_similarity(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Correlation of the time courses (see the module docstring); both [N_MELS, T]."""
    columns = min(reference.shape[1], candidate.shape[1])
    if columns == 0:
        return 0.0
    ref, cand = reference[:, :columns].astype(np.float64), candidate[:, :columns].astype(np.float64)
    ref_c = ref - ref.mean(axis=1, keepdims=True)
    cand_c = cand - cand.mean(axis=1, keepdims=True)
    if ref_c.std() < STEADY_STD and cand_c.std() < STEADY_STD:
        return _pearson(ref, cand)
    return _pearson(ref_c, cand_c)


def frame_similarity(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(Pearson correlation, mean absolute difference in grey levels)."""
    mad = float(np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).mean())
    return _pearson(reference, candidate), mad


# --------------------------------------------------------------------------- the release's fingerprint file
def save_fingerprints(path: str | os.PathLike, clip_ids: list[str], audio: list[AudioPrint],
                      frames: list[np.ndarray]) -> None:
    """An ``.npz`` (plain arrays, no pickles) with fixed zip timestamps, so the bytes are reproducible."""
    from builder.io.atomic import atomic_open

    longest = max((a.logmel.shape[1] for a in audio), default=0)
    logmel = np.full((len(audio), N_MELS, longest), np.nan, dtype=np.float16)
    for i, item in enumerate(audio):
        logmel[i, :, :item.logmel.shape[1]] = item.logmel
    arrays = {
        "clip_id": np.array(clip_ids, dtype="U"),
        "audio_logmel": logmel,
        "audio_columns": np.array([a.logmel.shape[1] for a in audio], dtype=np.int32),
        "audio_seconds": np.array([a.seconds for a in audio], dtype=np.float64),
        "frame_grey": np.stack(frames) if frames else np.zeros((0, FRAME_SIDE, FRAME_SIDE), np.uint8),
    }
    with atomic_open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())


def load_fingerprints(path: str | os.PathLike) -> dict[str, tuple[AudioPrint, np.ndarray]]:
    """clip_id -> (audio print, frame print); never unpickles."""
    from builder.errors import InputError

    try:
        with np.load(path, allow_pickle=False) as data:
            ids = [str(c) for c in data["clip_id"]]
            logmel, columns = data["audio_logmel"], data["audio_columns"]
            seconds, frames = data["audio_seconds"], data["frame_grey"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError(f"unreadable fingerprint file: {exc}", file=path) from None
    if not (len(ids) == len(logmel) == len(columns) == len(seconds) == len(frames)):
        raise InputError("fingerprint arrays have different lengths", file=path)
    return {cid: (AudioPrint(logmel[i, :, :columns[i]].astype(np.float32), float(seconds[i])), frames[i])
            for i, cid in enumerate(ids)}
