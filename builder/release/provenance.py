"""``provenance.json``: what built this release -- tool versions and every stage's recorded options.

Read from what the stages leave behind, never from memory:

* the media root's status logs (``*_status.jsonl``: ``fetch``, ``trim``,
  ``frames`` and any later stage that logs the same way): records, clips,
  statuses, the distinct ``params`` dicts the records carry (trim and frames
  record their options there), run ids and the first/last record time;
* JSON reports in the media root and in the manifests folder
  (``select_report.json``'s ``options``, ``audit.json``'s ``preset`` and
  ``options``, and any ``*_report.json`` / ``*_options.json`` a stage writes,
  e.g. curate's): their ``options`` (or the whole file when it is small);
* the inputs' SHA-256 (manifest, annotations) by file name.

``fetch`` does not log its options (URL template, height cap, rates); its
runs are identified by their run ids and times.
"""
from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from builder import __version__
from builder.io.status_log import StatusLog
from builder.manifest.media_root import MediaRoot
from builder.manifest.membership import sha256_file

PACKAGES = ("numpy", "pandas", "pyarrow", "librosa", "soundfile", "pillow", "opencv-python-headless",
            "pycocotools", "matplotlib", "torch", "torchaudio", "torchcodec", "yt-dlp", "ffmpeg-python")
SMALL_REPORT = 64 * 1024


def tool_versions() -> dict[str, Any]:
    from builder.media.ffmpeg import FFMPEG, FFPROBE

    out: dict[str, Any] = {"python": platform.python_version(), "llinet": __version__}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    for label, binary in (("ffmpeg", FFMPEG), ("ffprobe", FFPROBE)):
        try:
            # A bare "-version" query, no graph: nothing for ffmpeg-python to build.
            result = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30, check=False)
            out[label] = result.stdout.splitlines()[0].strip() if result.stdout else None
        except (OSError, subprocess.TimeoutExpired):
            out[label] = None
    return out


def summarise_log(path: Path) -> dict[str, Any]:
    read = StatusLog(path).read()
    records = read.records
    statuses: dict[str, int] = {}
    latest: dict[str, dict] = {}
    params: list[Any] = []
    run_ids: set[str] = set()
    for record in records:
        latest[record["clip_id"]] = record
        if "params" in record and record["params"] not in params:
            params.append(record["params"])
        if record.get("run_id"):
            run_ids.add(str(record["run_id"]))
    for record in latest.values():
        statuses[str(record["status"])] = statuses.get(str(record["status"]), 0) + 1
    times = sorted(str(r["time"]) for r in records if r.get("time"))
    return {"log": path.name, "records": len(records), "clips": len(latest),
            "latest_status": dict(sorted(statuses.items())), "params": params, "run_ids": sorted(run_ids),
            "first": times[0] if times else None, "last": times[-1] if times else None,
            "unreadable_lines": len(read.skipped_lines)}


def _report_options(path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {"unreadable": True}
    if isinstance(data, dict):
        picked = {k: data[k] for k in ("options", "preset", "params", "cap") if k in data}
        if picked:
            return picked
    return data if path.stat().st_size <= SMALL_REPORT else {"sha256": sha256_file(path)}


def stage_records(root: Path, manifests_dir: Path | None) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for stage, log in MediaRoot(root).status_logs().items():
        stages[stage] = summarise_log(log)
    reports: dict[str, Any] = {}
    folders = [root] + ([manifests_dir] if manifests_dir is not None else [])
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            if path.name.endswith(("_report.json", "_options.json")) or path.name in ("audit.json",):
                reports[path.name] = _report_options(path)
    return {"stages": stages, "reports": reports}


def provenance(*, root: Path, manifests_dir: Path | None, inputs: dict[str, Path | None],
               release_options: dict[str, Any]) -> dict[str, Any]:
    recorded = stage_records(root, manifests_dir)
    return {
        "llinet_version": __version__,
        "release": release_options,
        "tools": tool_versions(),
        "stages": recorded["stages"],
        "reports": recorded["reports"],
        "inputs": {name: ({"file": path.name, "sha256": sha256_file(path)} if path is not None else None)
                   for name, path in sorted(inputs.items())},
    }
