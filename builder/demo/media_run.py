"""Offline media demo: fetch -> trim -> frames on locally generated videos.

Makes a few synthetic "YouTube videos" (several codecs; one missing, so the
reserve fills in), serves them from a loopback HTTP server that honours Range
requests (:mod:`builder.demo.mirror`: yt-dlp's section downloads need it),
and runs the three real stages on them. Meant for
``llinet-build demo`` and for trying the pipeline without network access.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from builder.demo.mirror import MirrorServer
from builder.demo.videos import SynthSpec, synth_clip
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.manifest.ids import make_clip_id
from builder.manifest.media_root import MediaRoot
from builder.manifest.schema import write_manifest
from builder.media.frames import FrameOptions, frames
from builder.media.trim import TrimOptions, trim

# (ytid, class, initially selected, spec or None for "video is gone")
DEMO_VIDEOS = (
    ("demoBanjo01", "Banjo", True, SynthSpec(duration=12.0, width=320, height=180, fps=25, loud=(5.0, 8.0))),
    ("demoBanjo02", "Banjo", True, None),
    ("demoBanjo03", "Banjo", False, SynthSpec(duration=12.0, width=256, height=144, fps=15, vcodec="mpeg4",
                                              acodec="libmp3lame", sample_rate=22050, channels=1)),
    ("demoTabla01", "Tabla", True, SynthSpec(duration=12.0, width=192, height=108, fps=12, vcodec="libvpx-vp9",
                                             acodec="libopus", sample_rate=48000)),
    ("demoTabla02", "Tabla", True, SynthSpec(duration=12.0, width=180, height=320, fps=25, loud=(1.0, 4.0))),
)


def demo_manifest(start: float = 1.0, end: float = 11.0) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for ytid, cls, selected, _ in DEMO_VIDEOS:
        rank = sum(1 for r in rows if r["class"] == cls)
        rows.append({"clip_id": make_clip_id(ytid, start), "ytid": ytid, "start": start, "end": end,
                     "class": cls, "mid": "", "split": "", "source": "demo", "labels": "",
                     "rank": rank, "selected": selected})
    return pd.DataFrame(rows)


def media_demo(out: Path, *, progress: bool = False) -> dict:
    """Run fetch -> trim -> frames into ``out``; returns the final manifest and the stage summaries."""
    out = Path(out)
    mirror = out / "mirror"
    for ytid, _, _, spec in DEMO_VIDEOS:
        if spec is not None and not (mirror / f"{ytid}.mp4").is_file():
            synth_clip(mirror / f"{ytid}.mp4", spec)   # the container follows the name; content decides
    manifest = demo_manifest()
    with MirrorServer(mirror) as server:
        options = FetchOptions(root=out / "media", url_template=server.url_template, workers=1,
                               backoff=0.1, progress=progress)
        fetched, summary = fetch(manifest, options)
    trimmed, trim_counts = trim(fetched, TrimOptions(root=out / "media", progress=progress))
    framed, frame_counts = frames(trimmed, FrameOptions(root=out / "media", progress=progress))
    write_manifest(framed, MediaRoot(out / "media").manifest)
    return {"manifest": framed, "fetch": summary, "trim": trim_counts, "frames": frame_counts}
