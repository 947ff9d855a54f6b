"""ffprobe / FFmpeg helpers shared by the fetch, trim and frames stages.

``probe`` runs the ffprobe binary (an argument list, never a shell string) and
returns what the stages check: which streams a file has and how long it is.
Every FFmpeg command line in the project is built here from an ffmpeg-python
graph (:func:`ffmpeg_argv`) and every ffprobe one by :func:`ffprobe_argv`;
the callers run them with :mod:`subprocess`, so timeouts, pipes and error
messages stay under their control.
Audio decoding uses torchcodec's in-process FFmpeg bindings because spawning
``ffmpeg`` per clip costs 40-120 ms (measured on a 2-core CPU), more than the whole
per-clip budget of the trim stage.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ffmpeg-python: only its graph objects pass through here
    from ffmpeg.nodes import OutputStream

FFPROBE = os.environ.get("LLINET_FFPROBE", "ffprobe")
FFMPEG = os.environ.get("LLINET_FFMPEG", "ffmpeg")


class MediaError(Exception):
    """A media file (or URL) that ffprobe/FFmpeg cannot read."""


@dataclass(frozen=True)
class StreamInfo:
    codec_type: str              # "video" | "audio" | other ffprobe types
    codec_name: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float | None       # container duration in seconds (ffprobe format.duration)
    format_name: str = ""
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.codec_type == "video" and s.codec_name not in _COVER_ART), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.codec_type == "audio"), None)

    @property
    def has_video(self) -> bool:
        return self.video is not None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


# Still-image "video" streams that some containers carry as cover art: not a video.
_COVER_ART = {"mjpeg", "png", "bmp"}


def tools_available() -> bool:
    return shutil.which(FFPROBE) is not None and shutil.which(FFMPEG) is not None


def ffmpeg_argv(stream: OutputStream, *global_options: str) -> list[str]:
    """The argument list that runs an ffmpeg-python output graph with the configured FFmpeg binary.

    ``global_options`` (``"-v", "error", "-y"``, ...) come right after the binary, where FFmpeg's
    synopsis puts them; ffmpeg-python's ``.global_args()``/``.overwrite_output()`` would append them
    after the last output instead. ffmpeg-python writes each file's options in sorted order, which
    FFmpeg does not care about as long as no option repeats within one file.
    """
    return stream.compile(cmd=[FFMPEG, *global_options])


def ffprobe_argv(target: str | os.PathLike, *options: str) -> list[str]:
    """The argument list that runs the configured ffprobe on ``target``: ``-v error``, ``options``, ``target``.

    Built by hand because ffmpeg-python models FFmpeg graphs only: its ``ffmpeg.probe`` starts
    the process itself (no timeout, its own error type), so it has no ffprobe command to compile.
    """
    return [FFPROBE, "-v", "error", *options, os.fspath(target)]


def probe_argv(target: str, extra_args: Sequence[str] = ()) -> list[str]:
    """What :func:`probe` runs: streams and format of ``target`` as JSON."""
    return ffprobe_argv(target, "-print_format", "json", "-show_format", "-show_streams", *extra_args)


def probe(path_or_url: str | os.PathLike, *, timeout: float = 60.0,
          extra_args: list[str] | None = None) -> MediaInfo:
    """Streams and duration of a file or URL; raises :class:`MediaError` if unreadable."""
    target = os.fspath(path_or_url)
    if not _is_url(target):
        target = os.path.abspath(target)  # never starts with "-", so never read as an option
    args = probe_argv(target, extra_args or ())
    try:
        done = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffprobe timed out after {timeout:g}s on {target}") from exc
    except FileNotFoundError as exc:
        raise MediaError(f"ffprobe not found ({FFPROBE}); install FFmpeg") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaError(f"ffprobe cannot read {target}: {message[-1] if message else 'exit ' + str(done.returncode)}")
    return parse_probe_json(target, done.stdout.decode("utf-8", "replace"))


def parse_probe_json(path: str, text: str) -> MediaInfo:
    """Build :class:`MediaInfo` from ffprobe's ``-print_format json`` output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MediaError(f"ffprobe gave unparsable output for {path}") from exc
    streams = tuple(_stream(s) for s in data.get("streams", []))
    fmt = data.get("format", {})
    duration = _float(fmt.get("duration"))
    if duration is None:  # some containers only carry per-stream durations
        durations = [s.duration for s in streams if s.duration is not None]
        duration = max(durations) if durations else None
    return MediaInfo(path=path, duration=duration, format_name=str(fmt.get("format_name", "")), streams=streams)


def _stream(s: dict) -> StreamInfo:
    return StreamInfo(
        codec_type=str(s.get("codec_type", "")),
        codec_name=str(s.get("codec_name", "")),
        duration=_float(s.get("duration")),
        width=_int(s.get("width")),
        height=_int(s.get("height")),
        fps=_rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate")),
        sample_rate=_int(s.get("sample_rate")),
        channels=_int(s.get("channels")),
    )


def _float(value: object) -> float | None:
    if not isinstance(value, (int, float, str)):  # ffprobe's JSON: numbers, numeric strings or absent
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if np.isfinite(out) else None


def _int(value: object) -> int | None:
    if not isinstance(value, (int, float, str)):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _rate(value: object) -> float | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    num, _, den = value.partition("/")
    try:
        n, d = float(num), float(den)
    except ValueError:
        return None
    return n / d if d and n else None


def _is_url(target: str) -> bool:
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", target) is not None


def check_clip(info: MediaInfo, expected_seconds: float, tolerance: float) -> str | None:
    """Why ``info`` is not an acceptable clip of ``expected_seconds``, or None if it is.

    Returns one of ``no_video``, ``no_audio``, ``too_short``, ``too_long``
    (the caller decides which of those are permanent).
    """
    if not info.has_video:
        return "no_video"
    if not info.has_audio:
        return "no_audio"
    if info.duration is None or info.duration < expected_seconds - tolerance:
        return "too_short"
    if info.duration > expected_seconds + tolerance:
        return "too_long"
    return None


def decode_audio(path: str | os.PathLike, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode a file's first audio stream to float32 ``[channels, samples]`` in [-1, 1].

    ``sample_rate`` resamples (FFmpeg's swresample, in process); None keeps
    the stream's rate. Raises :class:`MediaError` on unreadable input.
    """
    from torchcodec.decoders import AudioDecoder  # imported lazily: pulls in torch

    try:
        decoder = AudioDecoder(os.fspath(path), sample_rate=sample_rate)
        samples = decoder.get_all_samples()
    except Exception as exc:  # torchcodec raises RuntimeError/ValueError with FFmpeg's message
        raise MediaError(f"cannot decode audio of {Path(path).name}: {first_line(exc, path)}") from exc
    data = samples.data.numpy()
    if data.ndim != 2 or data.shape[1] == 0:
        raise MediaError(f"no audio samples decoded from {Path(path).name}")
    return np.ascontiguousarray(data, dtype=np.float32), int(samples.sample_rate)


def first_line(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """The first line of an error message, with ``path`` shortened to its name (no machine paths in manifests)."""
    text = str(exc).strip()
    if path is not None:
        text = text.replace(os.fspath(path), Path(path).name)
    lines = text.splitlines()
    return lines[0] if lines else type(exc).__name__


def write_output(path: str | os.PathLike, data: bytes) -> int:
    """Write a media output atomically (temp file + rename in the same folder); returns its size.

    No fsync: the rename already guarantees that a killed process never leaves a partial file at
    ``path``, and fsyncing every WAV/JPEG costs more than encoding it (~5 ms each here). After a
    power loss a file could come back short; the stages record each output's size and redo any
    output whose size differs on the next run.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return len(data)

