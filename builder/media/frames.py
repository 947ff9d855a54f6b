"""`frames`: the video frame at the temporal centre of each clip's audio window.

"The frame at time t" is the frame on screen at t: the one whose
presentation interval [pts, pts + duration) contains t. It is decoded exactly
(torchcodec's exact seek mode decodes forward from the preceding keyframe;
never the nearest keyframe). ``t`` = ``window_offset + window_seconds / 2``
(the paper's "intermediate frame"), seconds from the start of the fetched
segment; with ``frames_per_clip = K`` the K times ``offset + (i + 0.5) *
window / K`` are taken instead, and ``frame_path`` is the middle one (index
K // 2).

Outputs, as JPEG: the centre-square crop at the video's height (the format of the
authors' published sample frames) in ``frames/`` -- the ``frame_path`` column
the model reads -- and the full frame in ``frames_full/``.

Flags (``frame_flags``): ``dark`` if the mean luma (BT.601, 0-255) is below
``dark_luma`` (default 16, video black level), ``uniform`` if the luma's
standard deviation is below ``uniform_std`` (default 4: a flat card or a
fade). The frame is still written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from builder.errors import InputError
from builder.manifest.ids import validate_clip_id
from builder.manifest.media_root import FRAMES_DIR, status_log_name
from builder.manifest.media_root import FRAMES_FULL_DIR as FULL_DIR
from builder.media.ffmpeg import MediaError, first_line, write_output
from builder.media.stage import StageRunOptions, StageSpec, process_shard, run_stage
from builder.media.trim import media_tasks

LOG_NAME = status_log_name("frames")


@dataclass(frozen=True)
class FrameOptions(StageRunOptions):
    root: Path
    frames_per_clip: int = 1
    jpeg_quality: int = 95
    dark_luma: float = 16.0
    uniform_std: float = 4.0

    def __post_init__(self) -> None:
        if self.frames_per_clip < 1:
            raise InputError(f"frames per clip must be >= 1, got {self.frames_per_clip}")
        if not 1 <= self.jpeg_quality <= 100:
            raise InputError(f"JPEG quality must be within 1..100, got {self.jpeg_quality}")

    def params(self) -> dict[str, Any]:
        return {"frames_per_clip": self.frames_per_clip, "jpeg_quality": self.jpeg_quality,
                "dark_luma": self.dark_luma, "uniform_std": self.uniform_std}


def frame_times(offset: float, window: float, count: int) -> list[float]:
    return [offset + (i + 0.5) * window / count for i in range(count)]


def centre_square(frame: np.ndarray) -> np.ndarray:
    """The centred square of side min(height, width) ([H, W, C] array)."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return frame[top:top + side, left:left + side]


def frame_flags(image: np.ndarray, dark_luma: float, uniform_std: float, *, bgr: bool = False) -> list[str]:
    """``dark`` / ``uniform`` from the BT.601 luma's mean and standard deviation (RGB, or BGR if ``bgr``)."""
    import cv2

    code = cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY        # BT.601 weights
    luma = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), code)
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(luma))
    flags = []
    if mean < dark_luma:
        flags.append("dark")
    if std < uniform_std:
        flags.append("uniform")
    return flags


def grab_frames(path: Path, times: list[float]) -> list[tuple[np.ndarray, float]]:
    """RGB uint8 [H, W, 3] frames on screen at ``times`` (clamped into the stream) and their pts."""
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(str(path), seek_mode="exact", dimension_order="NHWC")
        meta = decoder.metadata
        begin = float(meta.begin_stream_seconds or 0.0)
        end = float(meta.end_stream_seconds) if meta.end_stream_seconds is not None else None
        # The last instant on screen is just before end_stream_seconds.
        clamped = [min(max(t, begin), end - 1e-6) if end is not None else max(t, begin) for t in times]
        batch = decoder.get_frames_played_at(seconds=clamped)
    except Exception as exc:  # torchcodec reports FFmpeg errors as RuntimeError/ValueError
        raise MediaError(f"cannot decode video of {path.name}: {first_line(exc, path)}") from exc
    data = batch.data.numpy()
    return [(data[i], float(batch.pts_seconds[i])) for i in range(data.shape[0])]


def encode_jpeg(bgr: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR (OpenCV order) uint8 image."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise MediaError("JPEG encoding failed")
    return buffer.tobytes()


def frames_clip(root: Path, task: dict[str, Any], options: FrameOptions) -> dict[str, Any]:
    import cv2

    clip_id = task["clip_id"]
    count = options.frames_per_clip
    times = frame_times(task["window_offset"], task["window_seconds"], count)
    grabbed = grab_frames(root / task["media_path"], times)
    names = [f"{clip_id}.jpg"] if count == 1 else [f"{clip_id}_{i}.jpg" for i in range(count)]
    squares, fulls, flags, sizes = [], [], set(), {}
    for (rgb, _), name in zip(grabbed, names, strict=True):
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        square = centre_square(bgr)
        sizes[f"{FULL_DIR}/{name}"] = write_output(root / FULL_DIR / name, encode_jpeg(bgr, options.jpeg_quality))
        sizes[f"{FRAMES_DIR}/{name}"] = write_output(root / FRAMES_DIR / name,
                                                     encode_jpeg(square, options.jpeg_quality))
        squares.append(f"{FRAMES_DIR}/{name}")
        fulls.append(f"{FULL_DIR}/{name}")
        flags.update(frame_flags(square, options.dark_luma, options.uniform_std, bgr=True))
    middle = count // 2
    height, width = grabbed[0][0].shape[:2]
    return {"frame_path": squares[middle], "frame_full_path": fulls[middle], "frame_time": round(times[middle], 6),
            "frame_pts": round(grabbed[middle][1], 6), "frame_paths": ",".join(squares),
            "frame_times": ",".join(f"{t:.6f}" for t in times), "frame_width": width, "frame_height": height,
            "frame_size": min(width, height), "flags": ",".join(sorted(flags)), "output_bytes": sizes}


def frame_outputs(root: Path, clip_id: str) -> list[Path]:
    """The JPEGs frames writes for ``clip_id`` with any ``--frames-per-clip``: ``<id>.jpg``, ``<id>_<i>.jpg``."""
    name = re.compile(re.escape(validate_clip_id(clip_id)) + r"(?:_\d+)?\.jpg")
    found = []
    for folder in (root / FRAMES_DIR, root / FULL_DIR):
        found += [path for path in folder.glob(f"{clip_id}*.jpg") if name.fullmatch(path.name)]
    return found


def frames_shard(tasks: list[dict[str, Any]], options: FrameOptions) -> list[dict[str, Any]]:
    """Worker: grab each task's frames, log and return one record per clip."""
    return process_shard(tasks, options, LOG_NAME, frames_clip, {"frame_path": ""}, frame_outputs)


FRAMES_SPEC = StageSpec(
    name="frames", log_name=LOG_NAME, worker=frames_shard, output_keys=("frame_paths", "frame_full_path"),
    columns={"frame_path": "frame_path", "frame_full_path": "frame_full_path", "frame_time": "frame_time",
             "frame_pts": "frame_pts", "frame_paths": "frame_paths", "frame_times": "frame_times",
             "frame_width": "frame_width", "frame_height": "frame_height", "frame_size": "frame_size",
             "frames_status": "status", "frame_flags": "flags", "frames_error": "message"})


def _float(value: object, column: str, clip_id: str, source: str, line: int) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        out = float("nan")
    if not np.isfinite(out):
        raise InputError(f"clip {clip_id}: {column} is {value!r}; run `llinet-build trim` first",
                         file=source, line=line, field=column)
    return out


def frames(manifest: pd.DataFrame, options: FrameOptions, *, source: str = "<manifest>"):
    """The frames stage: returns (manifest with the frame columns, counts per status/flag)."""
    if "window_offset" not in manifest.columns:
        raise InputError("manifest has no 'window_offset' column: run `llinet-build trim` first",
                         file=source, line=1, field="window_offset")
    root = Path(options.root).resolve()
    options = replace(options, root=root)
    tasks = media_tasks(manifest, root, options.include_unselected, source)
    by_id = manifest.set_index("clip_id")
    for clip_id, task in list(tasks.items()):
        row, line = by_id.loc[clip_id], task["line"]
        if str(row.get("trim_status", "ok")) == "error":
            del tasks[clip_id]  # the audio is unusable: its frames would be orphans, and old ones stale
            for path in frame_outputs(root, clip_id):
                path.unlink(missing_ok=True)
            continue
        task["window_offset"] = _float(row["window_offset"], "window_offset", clip_id, source, line)
        task["window_seconds"] = _float(row.get("window_seconds", 3.0), "window_seconds", clip_id, source, line)
        task["input_key"] = f"{task['input_key']}@{task['window_offset']:.6f}+{task['window_seconds']:.6f}"
    return run_stage(manifest, FRAMES_SPEC, options, tasks, options.params())
