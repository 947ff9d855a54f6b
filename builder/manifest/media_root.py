"""What a media root holds: the one place that names its files and folders.

Every stage reads and writes under one folder (``--root``)::

    manifest.csv            the manifest after fetch / trim / frames (paths below are relative to the root)
    decisions.csv           the human accept/reject list (review, curate)
    annotations.json        COCO masks of the test frames (annotate, review)
    fetch_status.jsonl      append-only status log of each stage that has one (fetch, trim, frames)
    clips/                  fetched 10 s segments (fetch)
    audio/                  3 s wav windows (trim)
    frames/  frames_full/   square and full frames (frames)
    strips/                 waveform pictures the review page draws once per clip (review; a cache)
    .tmp/                   fetch's per-clip work folders

Code builds these paths through :class:`MediaRoot` (or the constants), never
from spelled-out names, so the layout can be read in one place.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.csv"
DECISIONS = "decisions.csv"
ANNOTATIONS = "annotations.json"
CLIPS_DIR = "clips"
AUDIO_DIR = "audio"
FRAMES_DIR = "frames"
FRAMES_FULL_DIR = "frames_full"
STRIPS_DIR = "strips"
TMP_DIR = ".tmp"
STATUS_LOG_SUFFIX = "_status.jsonl"
LOGGED_STAGES = ("fetch", "trim", "frames")     # the stages that keep a status log, in pipeline order


def status_log_name(stage: str) -> str:
    """File name of ``stage``'s status log (``fetch`` -> ``fetch_status.jsonl``)."""
    return f"{stage}{STATUS_LOG_SUFFIX}"


@dataclass(frozen=True)
class MediaRoot:
    """Paths inside one media root; nothing is created or checked."""

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def decisions(self) -> Path:
        return self.root / DECISIONS

    @property
    def annotations(self) -> Path:
        return self.root / ANNOTATIONS

    @property
    def clips_dir(self) -> Path:
        return self.root / CLIPS_DIR

    @property
    def audio_dir(self) -> Path:
        return self.root / AUDIO_DIR

    @property
    def frames_dir(self) -> Path:
        return self.root / FRAMES_DIR

    @property
    def frames_full_dir(self) -> Path:
        return self.root / FRAMES_FULL_DIR

    @property
    def tmp_dir(self) -> Path:
        return self.root / TMP_DIR

    def status_log(self, stage: str) -> Path:
        return self.root / status_log_name(stage)

    def status_logs(self) -> dict[str, Path]:
        """Stage name -> status log, for every log present (any stage, sorted by file name)."""
        return {path.name[:-len(STATUS_LOG_SUFFIX)]: path
                for path in sorted(self.root.glob(f"*{STATUS_LOG_SUFFIX}")) if path.is_file()}
