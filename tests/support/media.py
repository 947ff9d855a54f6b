"""Real media for the fetch/trim/frames tests, made once per session with FFmpeg.

``media_set(folder)`` writes every clip the tests need (several codecs,
containers and sizes, 10-12 s, with/without audio/video, 4 s, silent, dark,
corrupt) and memoises the result per folder, so test modules share one set.
See :mod:`builder.demo.videos` for what each frame and sample contains.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from builder.demo.videos import SynthSpec, corrupt_file, synth_clip
from builder.manifest.ids import make_clip_id

# name -> (file name, spec). Sizes are small: the content, not the pixels, is under test.
CLIPS: dict[str, tuple[str, SynthSpec | None]] = {
    "h264_aac": ("h264_aac.mp4", SynthSpec(loud=(6.0, 9.0))),
    "vp9_opus": ("vp9_opus.webm", SynthSpec(duration=12.0, width=192, height=108, fps=12, vcodec="libvpx-vp9",
                                            acodec="libopus", sample_rate=48000, loud=(1.0, 4.0))),
    "mpeg4_mp3": ("mpeg4_mp3.mkv", SynthSpec(duration=11.0, width=176, height=144, fps=15, vcodec="mpeg4",
                                             acodec="libmp3lame", sample_rate=22050, channels=1)),
    "portrait": ("portrait.mp4", SynthSpec(width=120, height=160, loud=(0.0, 3.0))),
    "short4": ("short4.mp4", SynthSpec(duration=4.0)),
    "video_only": ("video_only.mp4", SynthSpec(acodec=None)),
    "audio_only": ("audio_only.m4a", SynthSpec(vcodec=None)),
    "silent": ("silent.mp4", SynthSpec(silent=True)),
    "dark": ("dark.mp4", SynthSpec(dark=True)),
    "corrupt": ("corrupt.mp4", None),
}

# Video-only renditions + one audio-only track, like YouTube's DASH formats.
RENDITION_HEIGHTS = (144, 240, 360)

_LOCK = threading.Lock()
_MADE: dict[Path, dict[str, Path]] = {}


def media_set(folder: Path) -> dict[str, Path]:
    """All test clips under ``folder`` (made on first call, reused afterwards)."""
    folder = Path(folder)
    with _LOCK:
        if folder in _MADE:
            return _MADE[folder]
        out: dict[str, Path] = {}
        for name, (file_name, spec) in CLIPS.items():
            path = folder / file_name
            out[name] = corrupt_file(path) if spec is None else synth_clip(path, spec)
        for height in RENDITION_HEIGHTS:
            width = height * 16 // 9 // 2 * 2
            out[f"video_{height}p"] = synth_clip(folder / f"video_{height}p.mp4",
                                                 SynthSpec(width=width, height=height, acodec=None, fps=10))
        out["audio_track"] = synth_clip(folder / "audio_track.m4a", SynthSpec(vcodec=None, loud=(2.0, 5.0)))
        _MADE[folder] = out
        return out


def ytid_for(n: int, prefix: str = "clip") -> str:
    """A valid, readable 11-character YouTube ID: e.g. ``clip0000007``."""
    text = f"{prefix}{n:0{11 - len(prefix)}d}"
    assert len(text) == 11
    return text


def manifest_rows(entries: list[tuple[str, str, bool, int]], start: float = 0.0, end: float = 10.0) -> pd.DataFrame:
    """A manifest from (ytid, class, selected, rank) tuples, with the schema's columns."""
    rows = []
    for ytid, cls, selected, rank in entries:
        rows.append({"clip_id": make_clip_id(ytid, start), "ytid": ytid, "start": start, "end": end,
                     "class": cls, "mid": "/m/test", "split": "train", "source": "test", "labels": "/m/test",
                     "rank": rank, "selected": selected})
    return pd.DataFrame(rows)


def media_manifest(root: Path, media: dict[str, Path], names: list[str]) -> pd.DataFrame:
    """A post-fetch manifest whose clips are copies of ``media[name]`` under ``root/clips``.

    Row i gets YTID ``ytid_for(i, "m")``; the ``name`` column says which test clip it is.
    """
    import shutil

    rows = []
    for i, name in enumerate(names):
        ytid = ytid_for(i, "m")
        clip_id = make_clip_id(ytid, 0.0)
        source = media[name]
        rel = f"clips/{clip_id}{source.suffix}"
        (root / "clips").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / rel)
        rows.append({"clip_id": clip_id, "ytid": ytid, "start": 0.0, "end": 10.0, "class": "A", "mid": "/m/test",
                     "split": "train", "source": "test", "labels": "/m/test", "rank": i, "selected": True,
                     "fetch_status": "ok", "media_path": rel, "name": name})
    return pd.DataFrame(rows)


def by_name(df: pd.DataFrame, name: str) -> pd.Series:
    """The row of ``media_manifest``'s output made from test clip ``name``."""
    return df[df["name"] == name].iloc[0]
