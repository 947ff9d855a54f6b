"""A learnable synthetic zero-shot audio-visual set (tests and the offline demo).

Class k has a position t_k in [0, 1]. Its sound is a harmonic tone whose
fundamental rises with t (220 Hz · 4^t, two octaves); its picture is a disk
whose hue and radius rise with t on a noisy background. One monotone rule links
both modalities, so a model that learns it on the train classes can place
unseen classes that lie between them (test and validation classes are
midpoints between train classes).

No label reaches the inputs: clip IDs are random, file names are clip IDs, and
every sample draws its own pitch jitter, harmonic weights, noise, disk
position, hue jitter and background, so nothing but the rule identifies a class.
"""
from __future__ import annotations

import colorsys
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from builder.manifest.media_root import AUDIO_DIR, FRAMES_DIR, MediaRoot
from builder.manifest.schema import write_manifest
from builder.media.ffmpeg import ffmpeg_argv

ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


@dataclass(frozen=True)
class SyntheticSpec:
    n_train_classes: int = 6
    per_class: int = 24
    sample_rate: int = 16000
    seconds: float = 1.0
    image_size: int = 96
    seed: int = 0


@dataclass(frozen=True)
class SyntheticClass:
    name: str
    position: float   # t in [0, 1]
    split: str        # train | val_unseen | test


def class_layout(n_train_classes: int) -> list[SyntheticClass]:
    """Train classes evenly over [0, 1]; the midpoints between them alternate test / val_unseen."""
    if n_train_classes < 3:
        raise ValueError("need at least 3 train classes (2 midpoints for test and validation)")
    train = np.linspace(0.0, 1.0, n_train_classes)
    midpoints = (train[:-1] + train[1:]) / 2
    classes = [(t, "train") for t in train]
    classes += [(t, "test" if i % 2 == 0 else "val_unseen") for i, t in enumerate(midpoints)]
    classes.sort()
    return [SyntheticClass(f"synth_{i:02d}", float(t), split) for i, (t, split) in enumerate(classes)]


def tone(position: float, rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """Stereo float32 [2, T]: harmonic tone at 220·4^t Hz with per-sample variation."""
    count = int(round(sample_rate * seconds))
    time = np.arange(count) / sample_rate
    f0 = 220.0 * 4.0 ** position * (1.0 + rng.uniform(-0.01, 0.01))
    signal = np.zeros(count)
    for harmonic in range(1, 6):
        if f0 * harmonic < sample_rate / 2:
            # Overtones vary per sample (timbre); the fundamental stays the strongest partial.
            weight = 1.0 if harmonic == 1 else rng.uniform(0.2, 0.9) / harmonic
            signal += weight * np.sin(2 * np.pi * f0 * harmonic * time + rng.uniform(0, 2 * np.pi))
    envelope = np.minimum(1.0, np.minimum(time, seconds - time) / 0.02)  # 20 ms fades
    signal = signal * envelope / max(np.abs(signal).max(), 1e-9) * rng.uniform(0.3, 0.7)
    noise = rng.normal(0.0, 0.01, (2, count))
    return np.clip(signal[None, :] + noise, -1.0, 1.0).astype(np.float32)


def disk_color(position: float, rng: np.random.Generator | None = None) -> tuple[int, int, int]:
    # 0.05..0.75 (orange..violet): away from the red wrap-around, so hue is monotone in t.
    hue = 0.05 + 0.7 * position + (rng.uniform(-0.02, 0.02) if rng is not None else 0.0)
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, 0.9, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def disk_radius(position: float, size: int) -> float:
    return size * (0.12 + 0.18 * position)


def picture_and_mask(position: float, rng: np.random.Generator, size: int,
                     centre: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [size, size, 3] picture and its bool [size, size] disk mask (the "sounding object")."""
    background = rng.uniform(60, 160)
    image = np.clip(rng.normal(background, 20.0, (size, size, 3)), 0, 255)
    radius = disk_radius(position, size) * rng.uniform(0.9, 1.1)
    if centre is None:
        centre = (rng.uniform(radius, size - radius), rng.uniform(radius, size - radius))
    yy, xx = np.mgrid[0:size, 0:size]
    inside = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2
    image[inside] = disk_color(position, rng)
    return image.astype(np.uint8), inside


def picture(position: float, rng: np.random.Generator, size: int,
            centre: tuple[float, float] | None = None) -> np.ndarray:
    """uint8 [size, size, 3]: a disk (hue and radius follow t) on a grey noisy background."""
    return picture_and_mask(position, rng, size, centre)[0]


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """float [C, T] in [-1, 1] -> 16-bit PCM WAV (stdlib only)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    tmp = Path(f"{path}.tmp")
    with wave.open(str(tmp), "wb") as handle:
        handle.setnchannels(pcm.shape[0])
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.T.tobytes())
    os.replace(tmp, path)


def random_ytid(rng: np.random.Generator) -> str:
    return "".join(rng.choice(ID_ALPHABET, 11))


def generate_synthetic_set(out_dir: str | os.PathLike, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Write ``audio/*.wav``, ``frames/*.jpg`` and ``manifest.csv`` under ``out_dir``; returns the manifest."""
    out = Path(out_dir)
    layout = MediaRoot(out)             # laid out like a built media root
    layout.audio_dir.mkdir(parents=True, exist_ok=True)
    layout.frames_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    rows, used = [], set()
    for class_index, cls in enumerate(class_layout(spec.n_train_classes)):
        for rank in range(spec.per_class):
            ytid = random_ytid(rng)
            while ytid in used:
                ytid = random_ytid(rng)
            used.add(ytid)
            clip_id = f"{ytid}_0"
            audio_rel, frame_rel = f"{AUDIO_DIR}/{clip_id}.wav", f"{FRAMES_DIR}/{clip_id}.jpg"
            write_wav(out / audio_rel, tone(cls.position, rng, spec.sample_rate, spec.seconds), spec.sample_rate)
            Image.fromarray(picture(cls.position, rng, spec.image_size)).save(out / frame_rel, quality=92)
            mid = f"/m/synth{class_index:02d}"
            rows.append({"clip_id": clip_id, "ytid": ytid, "start": 0.0, "end": spec.seconds,
                         "class": cls.name, "mid": mid, "split": cls.split, "source": "synthetic",
                         "labels": mid, "rank": rank, "selected": True,
                         "audio_path": audio_rel, "frame_path": frame_rel})
    manifest = pd.DataFrame(rows)
    # Shuffle rows so manifest order carries no class structure either.
    manifest = manifest.iloc[rng.permutation(len(manifest))].reset_index(drop=True)
    return write_manifest(manifest, layout.manifest)


def class_video_argv(out: Path, wav: Path, *, fps: int, size: int) -> list[str]:
    """The FFmpeg command that muxes raw RGB frames from stdin with ``wav`` into H.264 + AAC at ``out``."""
    import ffmpeg  # local, like subprocess below: only rendering needs it

    frames = ffmpeg.input("pipe:0", f="rawvideo", pix_fmt="rgb24", s=f"{size}x{size}", r=str(fps))
    graph = ffmpeg.output(frames.video, ffmpeg.input(str(wav)).audio, str(out),
                          **{"c:v": "libx264", "pix_fmt": "yuv420p", "g": str(fps), "c:a": "aac", "b:a": "128k"},
                          shortest=None)  # None: a flag without a value
    return ffmpeg_argv(graph, "-nostdin", "-hide_banner", "-loglevel", "error", "-y")


def render_class_video(path: str | os.PathLike, position: float, seed: int, *, seconds: float = 10.0,
                       fps: int = 10, size: int = 160, sample_rate: int = 44100) -> Path:
    """An MP4 (H.264 + AAC) of one synthetic class: its tone and its disk moving across the frame.

    Frames are piped to ffmpeg as raw RGB; arguments are a list (no shell).
    Written to a temp name and renamed, so a killed render leaves no partial file.
    """
    import subprocess
    import tempfile

    rng = np.random.default_rng(seed)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * fps))
    start, end = _disk_track(position, rng, size)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        wav = Path(tmp) / "tone.wav"
        write_wav(wav, tone(position, rng, sample_rate, seconds), sample_rate)
        partial = Path(tmp) / f"video{out.suffix or '.mp4'}"
        command = class_video_argv(partial, wav, fps=fps, size=size)
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdin is not None
        try:
            for image, _ in _class_video_frames(position, seed, start, end, frames, size):
                process.stdin.write(image.tobytes())
        except BrokenPipeError:
            pass
        finally:
            process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.wait() != 0:
            raise RuntimeError(f"ffmpeg failed rendering {out}: {stderr.strip()}")
        os.replace(partial, out)
    return out


def _disk_track(position: float, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end centre of the disk's straight path across the frame."""
    radius = disk_radius(position, size)
    return rng.uniform(radius, size - radius, 2), rng.uniform(radius, size - radius, 2)


def _class_video_frames(position: float, seed: int, start: np.ndarray, end: np.ndarray, frames: int,
                        size: int):
    frame_rng = np.random.default_rng(seed + 1)
    for index in range(frames):
        centre = start + (end - start) * index / max(frames - 1, 1)
        yield picture_and_mask(position, frame_rng, size, (centre[0], centre[1]))


def class_video_mask(position: float, seed: int, time_s: float, *, seconds: float = 10.0, fps: int = 10,
                     size: int = 160) -> np.ndarray:
    """The disk's bool mask in the frame of :func:`render_class_video` on screen at ``time_s``.

    Replays the video's seeded generator, so the mask is exact: it is the ground
    truth the offline demo imports as segmentation annotations.
    """
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * fps))
    start, end = _disk_track(position, rng, size)
    index = min(max(int(np.floor(time_s * fps + 1e-9)), 0), frames - 1)
    # Replay frame by frame: each frame draws from one generator, so frame i depends on all before it.
    for i, (_, mask) in enumerate(_class_video_frames(position, seed, start, end, frames, size)):
        if i == index:
            return mask
    raise AssertionError("unreachable")


def render_synthetic_videos(out_dir: str | os.PathLike, *, n_train_classes: int = 6, per_class: int = 4,
                            seconds: float = 10.0, fps: int = 10, size: int = 160, seed: int = 0,
                            skip_rank: int | None = None) -> pd.DataFrame:
    """Render ``per_class`` videos for every class of :func:`class_layout` as ``<ytid>.mp4``.

    Returns (and writes as ``videos.csv``) one row per video: ytid, class, split,
    position, path. YTIDs are random valid YouTube IDs, so a local mirror server
    can serve them to the builder as if they were YouTube videos. The video of
    rank ``skip_rank`` in each class is listed but not rendered (one "gone from
    YouTube"); the other videos are the same with or without it.
    """
    from concurrent.futures import ThreadPoolExecutor

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows, used = [], set()
    for cls in class_layout(n_train_classes):
        for _ in range(per_class):
            ytid = random_ytid(rng)
            while ytid in used:
                ytid = random_ytid(rng)
            used.add(ytid)
            rows.append({"ytid": ytid, "class": cls.name, "split": cls.split, "position": cls.position,
                         "seed": int(rng.integers(2**31)), "path": str(out / f"{ytid}.mp4")})
    # All randomness is drawn above, so rendering in parallel (ffmpeg does the work) changes nothing.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        wanted = [row for index, row in enumerate(rows) if index % per_class != skip_rank]  # class-major rows
        list(pool.map(lambda r: render_class_video(r["path"], r["position"], r["seed"], seconds=seconds,
                                                   fps=fps, size=size), wanted))
    table = pd.DataFrame(rows)
    from builder.io.atomic import atomic_open
    with atomic_open(out / "videos.csv", "w", encoding="utf-8", newline="") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    return table
