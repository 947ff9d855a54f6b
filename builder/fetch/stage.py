"""`fetch`: download each selected clip's [start, end] section, resumably.

``fetch(manifest, options) -> (manifest, summary)`` is the stage; the CLI in
:mod:`builder.commands.fetch` is a thin wrapper. The flow:

1. Validate every YTID and clip ID before any URL or path is built.
2. Read the append-only status log (``<root>/fetch_status.jsonl``): clips
   logged ``ok`` for the same segment and format (:mod:`builder.fetch.resume`)
   whose file is present are done; ``unavailable`` clips are
   never retried; everything else (transient failures, halts, clips a killed
   run never finished) is tried again.
3. In waves: resolve the per-class selection (:mod:`builder.fetch.quota`),
   fetch the clips whose availability is unknown, repeat until every class is
   full or out of candidates. Shards go to the distributor; each worker
   appends its attempts to the log itself.
4. Return the manifest with ``fetch_status``, ``fetch_error``, ``media_path``,
   ``media_duration``, ``media_container``/``media_vcodec``/``media_acodec``,
   ``selected`` (final), ``selected_before_fetch``, ``replaces`` and
   ``replaced_by`` columns.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from builder.distributor import Distributor, chunk, default_shard_size
from builder.errors import InputError, LlinetError
from builder.fetch.errors import warning_class
from builder.fetch.options import STATUS_LOG, TMP_DIR, FetchOptions, build_url
from builder.fetch.quota import FAILED, GONE, INITIAL_COLUMN, OK, build_plans, initial_selection, pending_clips, resolve
from builder.fetch.rate import clear_halt, halt_reason
from builder.fetch.resume import fetch_tasks, media_columns, states_from_log
from builder.fetch.ytdlp import fetch_shard
from builder.io.environment import environment_guard
from builder.io.status_log import StatusLog
from builder.manifest.ids import InvalidYtidError, validate_clip_id, validate_ytid
from builder.manifest.validate import check_segments

logger = logging.getLogger(__name__)

__all__ = ["FetchOptions", "FetchSummary", "fetch", "FetchHalted", "validate_rows"]


class FetchHalted(LlinetError):
    """The run stopped on a bot check or a 429 burst; the manifest written so far is consistent."""


@dataclass
class FetchSummary:
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)   # error class -> clips (unavailable/failed)
    halted: dict | None = None
    attempted: int = 0
    warnings: dict[str, int] = field(default_factory=dict)           # warning class -> clips of this run
    warning_examples: dict[str, str] = field(default_factory=dict)   # warning class -> its first message

    def totals(self) -> dict[str, int]:
        out: Counter = Counter()
        for row in self.per_class.values():
            out.update(row)
        return dict(out)

    def table(self) -> str:
        """The end-of-run table: per class, then totals and failures by class."""
        cols = ("target", "ok", "unavailable", "failed", "pending", "replaced")
        width = max([len("class")] + [len(n) for n in self.per_class] + [5])
        lines = [f"{'class':<{width}} " + " ".join(f"{c:>11}" for c in cols) + f" {'available%':>11}"]
        for name, row in list(sorted(self.per_class.items())) + [("TOTAL", self.totals())]:
            tried = row.get("ok", 0) + row.get("unavailable", 0) + row.get("failed", 0)
            pct = f"{100.0 * row.get('ok', 0) / tried:.1f}" if tried else "-"
            lines.append(f"{name:<{width}} " + " ".join(f"{row.get(c, 0):>11}" for c in cols) + f" {pct:>11}")
        if self.failures:
            lines.append("failures by error class: " + ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())))
        if self.warnings:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.warnings.items()))
            lines.append(f"clips with yt-dlp warnings: {counts}")
            lines.extend(f"  {k}: {self.warning_examples[k]}" for k in sorted(self.warning_examples))
        return "\n".join(lines)


def validate_rows(manifest: pd.DataFrame, source: str = "<manifest>") -> None:
    """Refuse malformed rows before anything touches a URL or a path (line = CSV line, header = 1).

    IDs first, then the segment: finite times, 0 <= start < end, at most AudioSet's 10 s (plus a
    tolerance), and a clip ID that is ``<ytid>_<start in ms>`` of the row's own ytid and start."""
    pairs = zip(manifest["clip_id"].tolist(), manifest["ytid"].tolist(), strict=True)
    for position, (clip_id, ytid) in enumerate(pairs):
        try:
            validate_ytid(ytid)
        except InvalidYtidError as exc:
            raise InputError(str(exc), file=source, line=position + 2, field="ytid") from None
        try:
            validate_clip_id(clip_id)
        except InvalidYtidError as exc:
            raise InputError(str(exc), file=source, line=position + 2, field="clip_id") from None
        if not clip_id.startswith(ytid + "_"):
            raise InputError(f"clip ID {clip_id!r} does not belong to YouTube ID {ytid!r}",
                             file=source, line=position + 2, field="clip_id")
    check_segments(manifest, source)
    duplicated = manifest["clip_id"].duplicated()
    if duplicated.any():
        position = int(duplicated.to_numpy().nonzero()[0][0])
        raise InputError(f"duplicate clip ID {manifest['clip_id'].iloc[position]!r}",
                         file=source, line=position + 2, field="clip_id")


@contextlib.contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """One fetch per media root at a time (released by the kernel even on kill -9)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".fetch.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another fetch is running on this media root", file=root) from None
        yield
    finally:
        os.close(fd)


def fetch(manifest: pd.DataFrame, options: FetchOptions, *,
          source: str = "<manifest>") -> tuple[pd.DataFrame, FetchSummary]:
    """Run the fetch stage; returns the annotated manifest and the run summary."""
    validate_rows(manifest, source)
    root = Path(options.root)
    for ytid, clip_id in manifest[["ytid", "clip_id"]].head(1).itertuples(index=False):  # template sanity on a real ID
        build_url(options.url_template, ytid, clip_id)
    run_id = uuid.uuid4().hex[:12]
    options = replace(options, root=root.resolve(), run_id=run_id)
    # A read-only, full or vanished media root stops the run with one line, whoever meets it first.
    with environment_guard(root, "fetching"), run_lock(root):
        clear_halt(root)
        shutil.rmtree(root / TMP_DIR, ignore_errors=True)
        log = StatusLog(root / STATUS_LOG)
        read = log.read()
        if read.skipped_lines:
            logger.warning(f"fetch: ignoring {len(read.skipped_lines)} unreadable line(s) of {log.path} "
                           f"(first: line {read.skipped_lines[0]})")
        latest: dict[str, dict] = {}
        for record in read.records:
            latest[record["clip_id"]] = record
        tasks = fetch_tasks(manifest, options)
        states = states_from_log(root, latest, run_id, tasks)
        plans = build_plans(manifest, cap=options.cap, fill=options.fill)
        attempted = _run_waves(plans, states, latest, tasks, options)
        walks = resolve(plans, states.get)
        summary = _summarize(plans, walks, states, latest)
        summary.warnings, summary.warning_examples = count_warnings(latest.values(), run_id)
        summary.attempted = attempted
        summary.halted = halt_reason(root)
        return annotate(manifest, plans, walks, states, latest), summary


def _run_waves(plans, states, latest, tasks, options: FetchOptions) -> int:
    attempted = 0
    counts: Counter = Counter()
    total = 0  # clips handed out so far, over all waves: the bar's total grows wave by wave
    bar = tqdm(total=total, unit="clip", desc="fetch", disable=not options.progress, dynamic_ncols=True,
               file=sys.stderr, delay=0.5)
    with Distributor(options.distributor, options.workers, options.ray_address) as pool:
        while halt_reason(options.root) is None:
            wanted = pending_clips(resolve(plans, states.get))
            if not wanted:
                break
            size = options.shard_size or default_shard_size(len(wanted), options.workers, largest=8)
            total += len(wanted)
            bar.total = total
            bar.refresh()
            shards = chunk([tasks[c] for c in wanted], size)
            finished: set[str] = set()
            for records in pool.imap_unordered(fetch_shard, shards, options):
                for record in records:
                    clip_id = record["clip_id"]
                    finished.add(clip_id)
                    latest[clip_id] = record
                    states[clip_id] = {"ok": OK, "unavailable": GONE}.get(record["status"], FAILED)
                    counts[_status_name(states[clip_id])] += 1
                    attempted += 1
                    bar.update(1)
                bar.set_postfix({k: v for k, v in sorted(counts.items()) if v}, refresh=True)
            if len(finished) < len(wanted) and halt_reason(options.root) is None:
                # A shard returned without records and without a halt: never expected; avoid spinning.
                raise LlinetError(f"fetch workers returned no result for {len(wanted) - len(finished)} clip(s)")
    bar.close()
    return attempted


def _status_name(state: str | None) -> str:
    if state is None:
        return "todo"
    return {OK: "ok", GONE: "unavailable", FAILED: "failed"}.get(state, "todo")


def _failed_before(record: dict | None) -> bool:
    """A transient failure (or halt) not yet retried successfully."""
    return record is not None and record.get("status") in ("failed", "halted", "retry")


def annotate(manifest: pd.DataFrame, plans, walks, states, latest) -> pd.DataFrame:
    out = manifest.copy()
    initial = initial_selection(manifest)
    out[INITIAL_COLUMN] = initial.values
    chosen = {c for w in walks.values() for c in w.chosen}
    pending = {c for w in walks.values() for c in w.pending}
    replaced_by = {k: v for w in walks.values() for k, v in w.replaced_by.items()}
    replaces = {v: k for k, v in replaced_by.items()}
    status, error, media_path, duration = [], [], [], []
    for clip_id in out["clip_id"].tolist():
        state, record = states.get(clip_id), latest.get(clip_id, {})
        if state == OK:
            status.append("ok")
        elif state == GONE:
            status.append("unavailable")
        elif state == FAILED or _failed_before(record):
            status.append("failed")
        elif clip_id in pending:
            status.append("pending")
        else:
            status.append("unused")
        error.append("" if state == OK else str(record.get("error_class", "")))
        media_path.append(str(record.get("media_path", "")) if state == OK else "")
        known = state == OK and record.get("duration") is not None
        duration.append(float(record["duration"]) if known else float("nan"))
    out["fetch_status"] = status
    out["fetch_error"] = error
    out["media_path"] = media_path
    out["media_duration"] = duration
    ok = {c for c in out["clip_id"].tolist() if states.get(c) == OK}
    for column, values in media_columns(out["clip_id"].tolist(), ok, latest).items():
        out[column] = values
    out["selected"] = out["clip_id"].map(lambda c: c in chosen or c in pending).astype(bool)
    out["replaced_by"] = out["clip_id"].map(lambda c: replaced_by.get(c, ""))
    out["replaces"] = out["clip_id"].map(lambda c: replaces.get(c, ""))
    return out


def count_warnings(records, run_id: str) -> tuple[dict[str, int], dict[str, str]]:
    """Clips of this run with yt-dlp warnings, per warning class, and the first message of each class."""
    counts: Counter = Counter()
    examples: dict[str, str] = {}
    for record in records:
        if record.get("run_id") != run_id:
            continue
        classes = set()
        for message in record.get("warnings") or []:
            name = warning_class(str(message))
            classes.add(name)
            examples.setdefault(name, str(message))
        counts.update(classes)
    return dict(counts), examples


def _summarize(plans, walks, states, latest) -> FetchSummary:
    summary = FetchSummary()
    failures: Counter = Counter()
    for name, plan in plans.items():
        w = walks[name]
        seen = [c for c in plan.order if states.get(c) is not None]
        row = {"target": plan.cap, "ok": len(w.chosen), "pending": len(w.pending),
               "unavailable": sum(states.get(c) == GONE for c in seen),
               "failed": sum(states.get(c) == FAILED or (states.get(c) is None and _failed_before(latest.get(c)))
                             for c in plan.order),
               "replaced": len(w.replaced_by)}
        summary.per_class[name] = row
        for c in plan.order:
            if states.get(c) in (GONE, FAILED) and latest.get(c, {}).get("error_class"):
                failures[latest[c]["error_class"]] += 1
    summary.failures = dict(failures)
    return summary
