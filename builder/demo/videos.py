"""Synthetic audio-visual clips with known content, made with FFmpeg.

Used by the tests, the benchmarks and the offline demo: every frame says when
it is, so a frame grab can be checked pixel by pixel, and the audio has a
known loud stretch, so the ``loudest`` window policy has a known answer.

Frame layout: the left half is a flat colour chosen by the second
(:func:`second_colour`), the right half a grey level encoding the frame
index modulo 20 (:func:`frame_grey`). Audio: a 440 Hz tone (660 Hz on the
right channel) at amplitude 0.05, raised to 0.6 inside ``loud``.
"""
from __future__ import annotations

import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from builder.media.ffmpeg import ffmpeg_argv

PALETTE = ((230, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 40), (220, 40, 220),
           (40, 210, 220), (240, 140, 20), (130, 30, 200), (120, 120, 120), (250, 250, 250))
QUIET, LOUD = 0.05, 0.6


def second_colour(second: int) -> tuple[int, int, int]:
    return PALETTE[int(second) % len(PALETTE)]


def frame_grey(index: int) -> int:
    return 40 + 10 * (int(index) % 20)


def grey_to_index_mod20(grey: float) -> int:
    return int(round((grey - 40) / 10.0)) % 20


@dataclass(frozen=True)
class SynthSpec:
    duration: float = 10.0
    width: int = 160
    height: int = 120
    fps: float = 10.0
    vcodec: str | None = "libx264"       # None: no video stream
    acodec: str | None = "aac"           # None: no audio stream
    sample_rate: int = 44100
    channels: int = 2
    loud: tuple[float, float] | None = None
    silent: bool = False
    dark: bool = False                   # all-black video
    gop_seconds: float = 2.0             # keyframe interval


# Encoder options per codec, as FFmpeg output options (name without the dash -> value).
_VIDEO_OPTS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "ultrafast", "crf": "12", "pix_fmt": "yuv420p"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "b:v": "0", "crf": "20", "pix_fmt": "yuv420p"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8", "b:v": "2M", "pix_fmt": "yuv420p"},
    "mpeg4": {"q:v": "2", "pix_fmt": "yuv420p"},
}
_AUDIO_OPTS: dict[str, dict[str, str]] = {
    "aac": {"b:a": "160k"}, "libopus": {"b:a": "128k"}, "libmp3lame": {"b:a": "160k"},
    "libvorbis": {"q:a": "5"}, "pcm_s16le": {}}


def synth_audio(spec: SynthSpec) -> np.ndarray:
    """float32 [samples, channels] as described in the module docstring."""
    n = int(round(spec.duration * spec.sample_rate))
    t = np.arange(n, dtype=np.float64) / spec.sample_rate
    amplitude = np.full(n, QUIET)
    if spec.loud is not None:
        amplitude[(t >= spec.loud[0]) & (t < spec.loud[1])] = LOUD
    if spec.silent:
        amplitude[:] = 0.0
    channels = [amplitude * np.sin(2 * math.pi * (440.0 + 220.0 * c) * t) for c in range(spec.channels)]
    return np.stack(channels, axis=1).astype(np.float32)


def synth_frames(spec: SynthSpec):
    n_frames = int(round(spec.duration * spec.fps))
    half = spec.width // 2
    frame = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    for index in range(n_frames):
        if not spec.dark:
            frame[:, :half] = second_colour(int(index / spec.fps + 1e-9))
            frame[:, half:] = frame_grey(index)
        yield frame.tobytes()


def synth_argv(path: Path, spec: SynthSpec, wav: Path | None) -> list[str]:
    """The FFmpeg command that encodes raw RGB frames from stdin (if video) and ``wav`` (if audio) to ``path``."""
    streams = []
    options: dict[str, str] = {}
    if spec.vcodec is not None:
        frames = ffmpeg.input("pipe:0", f="rawvideo", pix_fmt="rgb24", s=f"{spec.width}x{spec.height}",
                              r=f"{spec.fps:g}")
        streams.append(frames.video)
        options.update({"c:v": spec.vcodec, **_VIDEO_OPTS.get(spec.vcodec, {}),
                        "g": str(max(1, int(round(spec.gop_seconds * spec.fps))))})
    if spec.acodec is not None:
        if wav is None:
            raise ValueError("an audio stream needs its WAV source")
        streams.append(ffmpeg.input(str(wav)).audio)
        options.update({"c:a": spec.acodec, **_AUDIO_OPTS.get(spec.acodec, {})})
    if path.suffix in (".mp4", ".m4a", ".mov"):
        options["movflags"] = "+faststart"
    options["t"] = f"{spec.duration:g}"
    return ffmpeg_argv(ffmpeg.output(*streams, str(path.resolve()), **options), "-v", "error", "-y")


def synth_clip(path: str | os.PathLike, spec: SynthSpec = SynthSpec()) -> Path:
    """Write a clip to ``path`` (container from the suffix); returns the path."""
    import soundfile  # local: only needed when audio is generated

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec.vcodec is None and spec.acodec is None:
        raise ValueError("a clip needs at least one stream")
    with tempfile.TemporaryDirectory() as tmp:
        wav = None
        if spec.acodec is not None:
            wav = Path(tmp) / "audio.wav"
            soundfile.write(wav, synth_audio(spec), spec.sample_rate, subtype="FLOAT")
        args = synth_argv(path, spec, wav)
        log_path = Path(tmp) / "ffmpeg.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdin=subprocess.PIPE if spec.vcodec else subprocess.DEVNULL, stderr=log)
            try:
                if proc.stdin is not None:
                    for chunk in synth_frames(spec):
                        proc.stdin.write(chunk)
                    proc.stdin.close()
                proc.wait(timeout=300)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
        if proc.returncode != 0:
            err = log_path.read_text("utf-8", "replace")
            raise RuntimeError(f"ffmpeg failed making {path.name}: {err[-500:]}")
    return path


def corrupt_file(path: str | os.PathLike, size: int = 50_000, seed: int = 0) -> Path:
    """Bytes that no demuxer accepts, under a media file name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + data)  # a plausible start, garbage after
    return path
