"""Which clips an earlier run already finished: the status log, keyed on what each file is.

A file in ``clips/`` is named by clip ID, but what it holds is a YouTube
video's segment [start, end] in some format. So an ``ok`` record counts only
when its ``key`` (YTID, start, end, section or whole file, height cap, the
FFmpeg output options) equals the key the clip would be fetched with now, and
the file is still there with the recorded size. A record with another key
marks the file stale: it is removed and the clip fetched again. A record
written before keys existed (no ``key``) sends the file through adoption,
which runs the same ffprobe checks as a fresh download.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from builder.fetch.options import FetchOptions
from builder.fetch.quota import FAILED, GONE, OK

# Manifest column -> status-record key: what the fetched file is (see diagnose.media_fields).
MEDIA_COLUMNS = {"media_container": "container", "media_vcodec": "vcodec", "media_acodec": "acodec"}


def clip_key(ytid: str, start: float, end: float, options: FetchOptions) -> str:
    """What a fetched file is: the segment and every option that changes its bytes."""
    form = "section" if options.sections else "whole"
    return (f"{ytid}|{start:.3f}|{end:.3f}|{form}|height<={int(options.max_height)}|"
            f"{' '.join(options.output_args)}")


def fetch_tasks(manifest: pd.DataFrame, options: FetchOptions) -> dict[str, dict[str, Any]]:
    columns = manifest[["clip_id", "ytid", "start", "end"]].itertuples(index=False)
    return {clip_id: {"clip_id": clip_id, "ytid": ytid, "start": float(start), "end": float(end),
                      "key": clip_key(ytid, float(start), float(end), options)}
            for clip_id, ytid, start, end in columns}


def _file_matches(root: Path, record: dict[str, Any]) -> bool:
    path = root / str(record.get("media_path", ""))
    if not record.get("media_path") or not path.is_file():
        return False
    size = record.get("bytes")
    return not isinstance(size, int) or size <= 0 or path.stat().st_size == size


def states_from_log(root: Path, latest: dict[str, dict], run_id: str,
                    tasks: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Availability per clip from the log; marks ``task["stale"]`` where the file on disk is another segment's."""
    states: dict[str, str | None] = {}
    for clip_id, record in latest.items():
        status = record.get("status")
        task = tasks.get(clip_id)
        if status == "ok":
            key = record.get("key")
            if task is not None and key and key != task["key"]:
                task["stale"] = True          # another segment or format: never reuse the file
                states[clip_id] = None
            elif key and _file_matches(root, record):
                states[clip_id] = OK
            else:
                states[clip_id] = None        # gone, changed, or unkeyed: the worker checks or refetches
        elif status == "unavailable":
            states[clip_id] = GONE
        elif status in ("failed", "halted") and record.get("run_id") == run_id:
            states[clip_id] = FAILED
        else:
            states[clip_id] = None            # retry transient failures and unfinished attempts
    return states


def media_columns(clip_ids: list[str], ok: set[str], latest: dict[str, dict]) -> dict[str, list[str]]:
    """Container and codecs of each fetched clip ('' for the others, and for records older than these fields)."""
    return {column: [str(latest.get(c, {}).get(key, "")) if c in ok else "" for c in clip_ids]
            for column, key in MEDIA_COLUMNS.items()}
