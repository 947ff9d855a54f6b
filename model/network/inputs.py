"""Decoding one wav / one jpg, with errors that name the file.

WAV is parsed here (RIFF chunks + numpy) so the training data path needs no
libsndfile (the GPU machines lack soundfile); other formats fall back to
soundfile when it is installed. Frames are decoded with PIL and resized with
torchvision's PIL functions, exactly like the official transforms.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE


class MediaError(ValueError):
    """A media file that cannot be decoded; str() says which file and why."""


def _parse_wav(data: bytes, path: Path) -> tuple[np.ndarray, int]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise MediaError(f"{path}: truncated fmt chunk")
            tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # first 2 bytes of the sub-format GUID
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            samples = body
            break
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or samples is None:
        raise MediaError(f"{path}: WAV without fmt or data chunk")
    tag, channels, rate, block_align, bits = fmt
    if channels < 1 or rate < 1:
        raise MediaError(f"{path}: invalid WAV header ({channels} channels, {rate} Hz)")
    frames = len(samples) // block_align if block_align else 0
    if frames == 0:
        raise MediaError(f"{path}: WAV has no audio frames")
    raw = samples[:frames * block_align]
    if tag == WAVE_FORMAT_PCM and bits == 16:
        wave = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif tag == WAVE_FORMAT_PCM and bits == 32:
        wave = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    elif tag == WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16))
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        wave = ints.astype(np.float32) / 8388608.0
    elif tag == WAVE_FORMAT_PCM and bits == 8:
        wave = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        wave = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    else:
        raise MediaError(f"{path}: unsupported WAV encoding (format tag {tag}, {bits} bits)")
    return wave.reshape(-1, channels).T.copy(), rate


def load_waveform(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Audio file -> (float32 [channels, samples] in [-1, 1], sample rate)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if data[:4] == b"RIFF":
        wave, rate = _parse_wav(data, path)
    else:
        try:
            import soundfile  # optional: only for non-WAV audio
        except ImportError as exc:
            raise MediaError(f"{path}: not a WAV file and soundfile is not installed") from exc
        try:
            array, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - libsndfile raises its own types
            raise MediaError(f"{path}: cannot decode audio ({exc})") from exc
        wave = np.ascontiguousarray(array.T)
    if not np.isfinite(wave).all():
        raise MediaError(f"{path}: audio contains NaN or infinite samples")
    return wave, int(rate)


def load_rgb(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except FileNotFoundError as exc:
        raise MediaError(f"{path}: file not found") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError(f"{path}: cannot decode image ({exc})") from exc


def resize_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """torchvision Resize(size) (shorter side, bilinear, antialiased) + CenterCrop(size) -> uint8 [3,S,S]."""
    resized = TF.center_crop(TF.resize(image, size), [size, size])
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1))


def normalise_images(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float, as ToTensor + Normalize(mean 0.5, std 0.5)."""
    return images_uint8.float().div_(255.0).sub_(0.5).div_(0.5)


def eval_image_transform(path: str | os.PathLike, size: int = 244) -> torch.Tensor:
    """Test-time transform: resize 244, centre crop 244, normalise 0.5/0.5 -> float [3,S,S]."""
    array = resize_center_crop(load_rgb(path), size)
    return normalise_images(torch.from_numpy(array)[None])[0]
