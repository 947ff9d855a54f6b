"""The waveform strip of a clip for the review page: a small PNG, drawn once per clip and cached.

The strip spans the whole AudioSet segment (``end - start`` seconds, 10 s as a
rule), so the page can mark where the 3 s window lies in it. It is drawn from
the fetched clip (``media_path``) when that file is there, else from the
window WAV (``audio_path``) alone, placed at its offset; the rest of the
segment is then drawn as a flat line. Each column is the peak level of its
slice on a dB scale (quiet instruments stay visible), darker inside the window.

The PNG is written beside the media, ``<root>/strips/<clip_id>.<key>.png``;
``key`` hashes what the picture depends on (source file size and mtime,
window, segment length, drawing version), so a re-trimmed or re-fetched clip
is drawn again. A media root that cannot be written only loses the cache.
"""
from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from builder.io.atomic import atomic_write_bytes
from builder.manifest.media_root import STRIPS_DIR
from builder.media.ffmpeg import MediaError, decode_audio
from builder.review.payload import ReviewError, media_relpath, to_float

WIDTH, HEIGHT = 400, 48
FLOOR_DB = -60.0
DRAWING = 1                               # bump when the picture changes: the cache keys change with it
# (r, g, b) per palette index: background, waveform outside the window, window band, waveform in the window
PALETTE = [(255, 255, 255), (152, 162, 179), (226, 234, 252), (29, 78, 216)]
_RENDERS = threading.BoundedSemaphore(1)   # a page asks for dozens at once: one at a time leaves the GIL to saves


@dataclass(frozen=True)
class StripSource:
    path: Path
    offset: float            # seconds of the segment where the file's first sample lies
    duration: float          # segment length the strip spans
    window: tuple[float, float] | None


def strip_source(root: Path, row: dict) -> StripSource | None:
    """What to draw a clip's strip from, or None if it has no audio file on disk."""
    start, end = to_float(row.get("start")), to_float(row.get("end"))
    offset, seconds = to_float(row.get("window_offset")), to_float(row.get("window_seconds"))
    window = (offset, seconds) if offset is not None and seconds else None
    duration = end - start if start is not None and end is not None and end > start else None
    full = media_relpath(row.get("media_path"))
    if full is not None and (root / full).is_file():
        return StripSource(root / full, 0.0, duration or 0.0, window)
    audio = media_relpath(row.get("audio_path"))
    if audio is not None and (root / audio).is_file():
        span = (window[0] if window else 0.0) + (window[1] if window else 0.0)
        return StripSource(root / audio, window[0] if window else 0.0, max(duration or 0.0, span), window)
    return None


def strip_png(root: Path, clip_id: str, row: dict) -> bytes:
    """The strip of one clip as PNG bytes (from the cache when it is current)."""
    source = strip_source(root, row)
    if source is None:
        raise ReviewError(404, f"clip {clip_id!r} has no audio file to draw a strip from")
    stat = source.path.stat()
    key = hashlib.blake2b(repr((source.path.name, stat.st_size, stat.st_mtime_ns, source.offset, source.duration,
                                source.window, WIDTH, HEIGHT, DRAWING)).encode(), digest_size=5).hexdigest()
    cached = root / STRIPS_DIR / f"{clip_id}.{key}.png"
    if cached.is_file():
        return cached.read_bytes()
    with _RENDERS:
        data = render(source)
    try:
        for old in cached.parent.glob(f"{clip_id}.*.png"):
            old.unlink(missing_ok=True)
        atomic_write_bytes(cached, data)
    except OSError:
        pass                      # a read-only media root: serve it anyway, draw it again next time
    return data


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Samples averaged over channels; WAV/FLAC/OGG via libsndfile, anything else via FFmpeg."""
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        try:
            audio, rate = decode_audio(path)
        except MediaError as exc:
            raise ReviewError(422, f"cannot draw the strip: {exc}") from None
        return audio.mean(axis=0), rate


def render(source: StripSource) -> bytes:
    samples, rate = read_mono(source.path)
    duration = source.duration or len(samples) / rate
    # Column c covers seconds [c, c + 1) * duration / WIDTH of the segment; its level is the peak of
    # the samples there (NaN where the file has none). The columns the file covers are contiguous.
    edges = np.round((np.arange(WIDTH + 1) * duration / WIDTH - source.offset) * rate).astype(np.int64)
    starts, ends = np.clip(edges[:-1], 0, len(samples)), np.clip(edges[1:], 0, len(samples))
    covered = np.flatnonzero(ends > starts)
    level = np.full(WIDTH, np.nan)
    if covered.size:
        magnitude = np.abs(samples[:ends[covered[-1]]])
        level[covered] = np.maximum.reduceat(magnitude, starts[covered])
    with np.errstate(divide="ignore"):
        db = 20 * np.log10(np.where(np.isnan(level), 0.0, level))
    height = np.clip((db - FLOOR_DB) / -FLOOR_DB, 0, 1) * (HEIGHT / 2 - 1)
    height[np.isnan(level)] = 0.0
    pixels = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    in_window = np.zeros(WIDTH, dtype=bool)
    if source.window is not None and duration > 0:
        first, seconds = source.window
        centres = (np.arange(WIDTH) + 0.5) * duration / WIDTH
        in_window = (centres >= first) & (centres < first + seconds)
        pixels[:, in_window] = 2
    rows = np.abs(np.arange(HEIGHT) - (HEIGHT - 1) / 2)[:, None]
    wave = rows <= np.maximum(height, 0.5)[None, :]       # at least the centre line
    pixels[wave] = np.where(np.broadcast_to(in_window, wave.shape), 3, 1)[wave]
    image = Image.fromarray(pixels, mode="P")
    image.putpalette([v for rgb in PALETTE for v in rgb])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
