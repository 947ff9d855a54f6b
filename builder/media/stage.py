"""Shared driver for the per-clip media stages (trim, frames).

A stage is a worker function over shards of clip tasks that writes its
outputs atomically, appends one record per clip to the stage's status log and
returns the records. This driver picks the rows to do, skips those finished
by an earlier run with the same parameters (resume after any crash: outputs
are renamed into place before their record is written), runs the rest on the
distributor with a progress bar, and merges every record back into the
manifest as columns.
"""
from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from builder.distributor import Distributor, chunk, default_shard_size
from builder.errors import InputError
from builder.io.environment import EnvironmentFailure, environment_guard, environment_reason, root_problem, stop_message
from builder.io.status_log import StatusLog
from builder.manifest.ids import validate_clip_id
from builder.media.ffmpeg import MediaError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageSpec:
    name: str                                   # "trim" | "frames"
    log_name: str                               # file in the media root
    worker: Callable                            # worker(tasks, options) -> list[record]
    columns: dict[str, str]                     # manifest column -> record key
    output_keys: tuple[str, ...]                # record keys holding output paths (relative to root)


@dataclass(frozen=True, kw_only=True)
class StageRunOptions:
    """How a media stage runs -- which rows, on what, how visibly -- as opposed to what it makes.

    The stages' option classes extend this (keyword-only fields); these knobs are not part of
    their ``params()``, so changing them never invalidates finished clips.
    """

    include_unselected: bool = False
    workers: int = 1
    distributor: str = "local"
    ray_address: str | None = None
    shard_size: int | None = None
    progress: bool = True


def rows_to_process(manifest: pd.DataFrame, include_unselected: bool) -> pd.Series:
    """Rows with a fetched file; by default only the final selection."""
    if "media_path" not in manifest.columns:
        raise InputError("manifest has no 'media_path' column: run `llinet-build fetch` first")
    has_file = manifest["media_path"].fillna("").astype(str) != ""
    if "fetch_status" in manifest.columns:
        has_file &= manifest["fetch_status"].astype(str) == "ok"
    if include_unselected or "selected" not in manifest.columns:
        return has_file
    from builder.fetch.quota import parse_bool
    return has_file & manifest["selected"].map(parse_bool).astype(bool)


def process_shard(tasks: list[dict[str, Any]], options: Any, log_name: str,
                  process_clip: Callable[[Path, dict[str, Any], Any], dict[str, Any]],
                  empty_outputs: dict[str, str],
                  outputs_of: Callable[[Path, str], list[Path]] | None = None) -> list[dict[str, Any]]:
    """A stage worker's loop: ``process_clip(root, task, options)`` per task -> one logged record each.

    A clip that fails (bad media) gets an ``error`` record with ``empty_outputs`` and the
    exception's first line instead of stopping the shard, and its outputs from an earlier run
    (``outputs_of(root, clip_id)``) are removed: a file must never outlive the record that names it.
    A machine failure (full disk, read-only or vanished root) is not the clip's: it raises
    :class:`EnvironmentFailure` and records nothing, so a rerun after the fix resumes cleanly.
    """
    root = Path(options.root)
    log = StatusLog(root / log_name, fsync=False)
    records = []
    for task in tasks:
        clip_id = validate_clip_id(task["clip_id"])
        doing = f"writing the outputs of {clip_id}"
        _stop_if_root_gone(root, doing)
        base = {"clip_id": clip_id, "params": options.params(),
                "input": task["media_path"], "input_key": task["input_key"]}
        try:
            record = {**base, "status": "ok", "message": "", **process_clip(root, task, options)}
        except (MediaError, OSError, ValueError, RuntimeError) as exc:
            reason = environment_reason(exc)
            if reason is not None:
                raise EnvironmentFailure(stop_message(reason, root, doing)) from exc
            _stop_if_root_gone(root, doing)     # a vanished root shows up as an unreadable input first
            record = {**base, "status": "error", **empty_outputs, "flags": "",
                      "message": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
            with environment_guard(root, doing):
                for path in outputs_of(root, clip_id) if outputs_of is not None else []:
                    path.unlink(missing_ok=True)
        with environment_guard(root, doing):
            records.append(log.append(record))
    return records


def _stop_if_root_gone(root: Path, doing: str) -> None:
    problem = root_problem(root)
    if problem is not None:
        raise EnvironmentFailure(stop_message(problem, root, doing))


def run_stage(manifest: pd.DataFrame, spec: StageSpec, options: Any, tasks: dict[str, dict],
              params: dict[str, Any]) -> tuple[pd.DataFrame, Counter]:
    """Run ``spec`` over ``tasks`` (clip_id -> task), reusing finished records; returns (manifest, counts)."""
    root = Path(options.root)
    log = StatusLog(root / spec.log_name)
    read = log.read()
    if read.skipped_lines:
        logger.warning(f"{spec.name}: ignoring {len(read.skipped_lines)} unreadable line(s) of {log.path}")
    latest: dict[str, dict] = {}
    for record in read.records:
        latest[record["clip_id"]] = record
    todo = []
    for clip_id, task in tasks.items():
        if clip_id in latest and _still_valid(latest[clip_id], task, params, root, spec):
            continue
        todo.append(task)
    counts: Counter = Counter()
    bar = tqdm(total=len(todo), unit="clip", desc=spec.name, disable=not options.progress,
               dynamic_ncols=True, file=sys.stderr)
    if todo:
        size = options.shard_size or default_shard_size(len(todo), options.workers)
        with Distributor(options.distributor, options.workers, options.ray_address) as pool:
            for records in pool.imap_unordered(spec.worker, chunk(todo, size), options):
                for record in records:
                    latest[record["clip_id"]] = record
                    counts[record["status"]] += 1
                    for flag in filter(None, str(record.get("flags", "")).split(",")):
                        counts[flag] += 1
                bar.update(len(records))
                bar.set_postfix(dict(sorted(counts.items())), refresh=True)
    bar.close()
    counts["reused"] = len(tasks) - len(todo)
    return merge_records(manifest, spec, {c: latest[c] for c in tasks if c in latest}), counts


def _still_valid(record: dict, task: dict, params: dict, root: Path, spec: StageSpec) -> bool:
    if record.get("status") != "ok" or record.get("params") != params:
        return False
    if record.get("input") != task.get("media_path") or record.get("input_key") != task.get("input_key"):
        return False
    for key in spec.output_keys:
        for rel in filter(None, str(record.get(key, "")).split(",")):
            if not (root / rel).is_file():
                return False
    # Outputs are renamed into place without fsync: a size mismatch (power loss) means redo.
    for rel, size in (record.get("output_bytes") or {}).items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def merge_records(manifest: pd.DataFrame, spec: StageSpec, records: dict[str, dict]) -> pd.DataFrame:
    out = manifest.copy()
    ids = out["clip_id"].tolist()
    for column, key in spec.columns.items():
        values = []
        for clip_id in ids:
            record = records.get(clip_id)
            values.append(record.get(key, "") if record is not None else "")
        out[column] = pd.Series(values, index=out.index, dtype=object)
    return out
