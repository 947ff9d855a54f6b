"""`trim`: cut each fetched clip's audio to a fixed window (default 3 s).

Window policies (offset = seconds from the start of the fetched segment):

* ``first``   -- offset 0: the paper's "10 s truncated to 3 s" (Jia et al. 2020).
* ``center``  -- the window centred in the audio.
* ``loudest`` -- the window with the highest RMS over the whole audio,
  searched on a 10 ms grid (ties: the earliest).

Output (default = the authors' published sample files): WAV, 16-bit PCM,
44,100 Hz, channels as in the source; ``--sample-rate`` / ``--mono`` change
that. Every file has exactly ``round(window * rate)`` samples.

Flags (column ``trim_flags``; the clip is still written, so a curation step
can decide):

* ``too_short`` -- the audio is shorter than the window; the tail is zero-padded.
* ``silent`` -- the window's RMS is below ``silence_dbfs`` (default -60 dBFS,
  i.e. RMS < 0.001 of full scale; digital silence is -inf). For scale: a
  full-scale sine is -3 dBFS, 16-bit dither about -101 dBFS, and typical
  quiet-but-not-empty recordings sit around -50 to -30 dBFS.

Unreadable input gives ``trim_status = error`` with the decoder's message;
the run goes on.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from builder.errors import InputError
from builder.manifest.ids import validate_clip_id
from builder.manifest.media_root import AUDIO_DIR, status_log_name
from builder.media.ffmpeg import decode_audio, write_output
from builder.media.stage import StageRunOptions, StageSpec, process_shard, rows_to_process, run_stage

POLICIES = ("first", "center", "loudest")
LOG_NAME = status_log_name("trim")
LOUDEST_HOP_SECONDS = 0.010


@dataclass(frozen=True)
class TrimOptions(StageRunOptions):
    root: Path
    window: float = 3.0
    policy: str = "first"
    sample_rate: int | None = 44100            # None: keep the source rate
    mono: bool = False
    silence_dbfs: float = -60.0

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise InputError(f"window policy must be one of {POLICIES}, got {self.policy!r}")
        if not self.window > 0:
            raise InputError(f"window must be positive, got {self.window}")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise InputError(f"sample rate must be within 8000..192000 Hz, got {self.sample_rate}")

    def params(self) -> dict[str, Any]:
        """What determines the output; a change invalidates earlier results."""
        return {"window": self.window, "policy": self.policy, "sample_rate": self.sample_rate,
                "mono": self.mono, "silence_dbfs": self.silence_dbfs}


def window_offset_samples(audio: np.ndarray, n_window: int, policy: str, sample_rate: int) -> int:
    """Start sample of the window in ``audio`` ([channels, samples]) under ``policy``."""
    n_total = audio.shape[1]
    if policy == "first" or n_total <= n_window:
        return 0
    if policy == "center":
        return (n_total - n_window) // 2
    if policy == "loudest":
        hop = max(1, int(round(LOUDEST_HOP_SECONDS * sample_rate)))
        if n_window % hop == 0:
            # Windows start on the hop grid and span whole hops: sum energy per hop once (1,000
            # numbers for 10 s), then slide over those sums. Same result as the per-sample sum.
            n_blocks = n_total // hop
            blocks = np.square(audio[:, :n_blocks * hop]).reshape(audio.shape[0], n_blocks, hop)
            block_energy = blocks.sum(axis=2, dtype=np.float64).sum(axis=0)
            cumulative = np.concatenate([[0.0], np.cumsum(block_energy)])
            span = n_window // hop
            energy = cumulative[span:] - cumulative[:-span]
            starts = np.arange(len(energy)) * hop
        else:
            power = np.square(audio).sum(axis=0, dtype=np.float64)
            cumulative = np.concatenate([[0.0], np.cumsum(power)])
            starts = np.arange(0, n_total - n_window + 1, hop)
            energy = cumulative[starts + n_window] - cumulative[starts]
        # Codec noise makes exact ties rare; a relative tolerance lets the earliest of equals win.
        best = energy.max()
        return int(starts[np.flatnonzero(energy >= best * (1 - 1e-9))[0]])
    raise ValueError(f"unknown policy {policy!r}")


def rms_dbfs(window: np.ndarray) -> float:
    """20 log10(RMS) re full scale 1.0 over all samples and channels; -inf for digital silence."""
    rms = math.sqrt(float(np.einsum("ij,ij->", window, window, dtype=np.float64)) / window.size) if window.size else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else float("-inf")


def trim_clip(media: Path, out: Path, options: TrimOptions) -> dict[str, Any]:
    """Write the window of ``media`` to ``out``; returns the record fields (raises MediaError)."""
    import soundfile

    audio, rate = decode_audio(media, sample_rate=options.sample_rate)
    if options.mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    n_window = int(round(options.window * rate))
    start = window_offset_samples(audio, n_window, options.policy, rate)
    window = audio[:, start:start + n_window]
    flags = []
    if window.shape[1] < n_window:
        flags.append("too_short")
        window = np.pad(window, ((0, 0), (0, n_window - window.shape[1])))
    level = rms_dbfs(window)
    if level < options.silence_dbfs:
        flags.append("silent")
    # Quantise here (round to nearest, symmetric scale) so the bytes do not depend on libsndfile's
    # float conversion; encode in memory and write once (soundfile's file-object I/O is many small calls).
    pcm = np.round(np.clip(window.T, -1.0, 1.0) * 32767.0).astype("<i2")
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, rate, format="WAV", subtype="PCM_16")
    size = write_output(out, buffer.getvalue())
    return {"window_offset": round(start / rate, 6), "window_seconds": options.window,
            "audio_samples": n_window, "audio_sample_rate": rate, "audio_channels": int(window.shape[0]),
            "audio_rms_dbfs": round(level, 2) if math.isfinite(level) else "-inf",
            "source_seconds": round(audio.shape[1] / rate, 6), "flags": ",".join(flags), "output_size": size}


def _trim_task(root: Path, task: dict[str, Any], options: TrimOptions) -> dict[str, Any]:
    rel = f"{AUDIO_DIR}/{validate_clip_id(task['clip_id'])}.wav"
    fields = trim_clip(root / task["media_path"], root / rel, options)
    fields["output_bytes"] = {rel: fields.pop("output_size")}
    return {"audio_path": rel, **fields}


def trim_outputs(root: Path, clip_id: str) -> list[Path]:
    """The files trim writes for ``clip_id`` (removed when the clip fails on a rerun)."""
    return [root / AUDIO_DIR / f"{validate_clip_id(clip_id)}.wav"]


def trim_shard(tasks: list[dict[str, Any]], options: TrimOptions) -> list[dict[str, Any]]:
    """Worker: trim each task's clip, log and return one record per clip."""
    return process_shard(tasks, options, LOG_NAME, _trim_task, {"audio_path": ""}, trim_outputs)


TRIM_SPEC = StageSpec(
    name="trim", log_name=LOG_NAME, worker=trim_shard, output_keys=("audio_path",),
    columns={"audio_path": "audio_path", "window_offset": "window_offset", "window_seconds": "window_seconds",
             "audio_samples": "audio_samples", "audio_sample_rate": "audio_sample_rate",
             "audio_channels": "audio_channels", "audio_rms_dbfs": "audio_rms_dbfs",
             "trim_status": "status", "trim_flags": "flags", "trim_error": "message"})


def input_key(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def media_tasks(manifest: pd.DataFrame, root: Path, include_unselected: bool,
                source: str = "<manifest>") -> dict[str, dict[str, Any]]:
    mask = rows_to_process(manifest, include_unselected).to_numpy()
    tasks = {}
    rows = zip(manifest["clip_id"].tolist(), manifest["media_path"].tolist(), mask, strict=True)
    for position, (raw_id, raw_path, wanted) in enumerate(rows):
        if not wanted:
            continue
        clip_id = validate_clip_id(raw_id)
        rel = str(raw_path)
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise InputError(f"media_path {rel!r} must be relative to the media root, without '..'",
                             file=source, line=position + 2, field="media_path")
        tasks[clip_id] = {"clip_id": clip_id, "media_path": rel, "input_key": input_key(root / rel),
                          "line": position + 2}
    return tasks


def trim(manifest: pd.DataFrame, options: TrimOptions, *, source: str = "<manifest>"):
    """The trim stage: returns (manifest with the trim columns, counts per status/flag)."""
    root = Path(options.root).resolve()
    options = _with_root(options, root)
    tasks = media_tasks(manifest, root, options.include_unselected, source)
    return run_stage(manifest, TRIM_SPEC, options, tasks, options.params())


def _with_root(options, root: Path):
    from dataclasses import replace
    return replace(options, root=root)
