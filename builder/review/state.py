"""The review page's model: clips, decisions and masks behind ``llinet-build review``.

The page (``builder/review/static``) talks JSON to :mod:`builder.review.server`,
which calls a :class:`ReviewSession`. The session never writes a file itself:

* decisions go through :func:`builder.curate.decisions.record_decision` /
  :func:`~builder.curate.decisions.remove_decision` (file lock + atomic replace,
  one row per clip), so two tabs, two servers or a killed server lose nothing
  and ``curate --decisions`` reads the file as it is;
* masks go through :func:`builder.annotate.coco.save_clip_mask` /
  :func:`~builder.annotate.coco.delete_clip_masks` (the same validation and COCO/RLE
  writing as ``annotate import``).

Every read comes from disk (the decision CSV, ``annotations.json``), so a page
that reloads sees what any other writer saved. Per-class counts are the
projection of ``curate`` with the current decisions (the same function, cap and
flags), so "selected / cap" on the page is what ``curate`` would select.

Media files are found only through the manifest: a request names a clip id and
a kind (frame / audio); the path comes from that clip's ``frame_path`` /
``audio_path`` column, relative to the media root, and paths that are absolute
or climb out with ``..`` are never served.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from builder.annotate.coco import (
    MASKED_SPLITS,
    AnnotationContext,
    delete_clip_masks,
    load_annotations,
    mask_for_clip,
    open_annotations,
    save_clip_mask,
)
from builder.audioset.classes import TargetClass
from builder.curate.decisions import Decision, make_decision, read_decisions, record_decision, remove_decision
from builder.curate.stage import CurateOptions, curate, initial_selection, resolve_cap
from builder.errors import InputError
from builder.manifest.ids import InvalidYtidError, validate_clip_id

# Manifest columns holding media paths, by the name the page asks for.
MEDIA_COLUMNS = {"frame": "frame_path", "audio": "audio_path"}
# Offered on the page as one-key reasons (1..n); any other text is fine too.
REJECT_REASONS = (
    "no instrument on screen",
    "instrument visible but not the sound source",
    "other sounds dominate",
    "wrong instrument / class",
    "several instruments playing",
    "poor quality (blurred, dark, static image)",
)
MAX_REASON = 500
MAX_REVIEWER = 100
MAX_MASK_SIDE = 8192


class ReviewError(Exception):
    """A request the page (or a script) got wrong: the HTTP status and a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_relpath(value: object) -> str | None:
    """The manifest's media path if it is a usable path relative to the media root, else None."""
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "nan":
        return None
    path = Path(text)
    if path.is_absolute() or ".." in path.parts or "\\" in text or "\x00" in text:
        return None
    return text


def mask_to_runs(mask: np.ndarray) -> list[int]:
    """Row-major run lengths of a boolean mask, background first (a leading 0 if it starts with foreground)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="C")
    if flat.size == 0:
        return []
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return ([0] + runs) if flat[0] else runs


def runs_to_mask(runs: Any, width: Any, height: Any) -> np.ndarray:
    """The inverse of :func:`mask_to_runs`; a ReviewError (400) for anything malformed."""
    for name, value in (("width", width), ("height", height)):
        if type(value) is not int or not 1 <= value <= MAX_MASK_SIDE:
            raise ReviewError(400, f"'{name}' must be an integer in 1..{MAX_MASK_SIDE}, got {value!r}")
    if not isinstance(runs, list) or not all(type(r) is int and r >= 0 for r in runs):
        raise ReviewError(400, "'runs' must be a list of non-negative integers (row-major run lengths, "
                               "background first)")
    total = sum(runs)
    if total != width * height:
        raise ReviewError(400, f"'runs' cover {total} pixels but a {width}x{height} mask has {width * height}")
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(height, width)


@dataclass
class Snapshot:
    """What the disk says right now: decisions (manifest clips only), the curate projection, masked clips."""
    decisions: dict[str, Decision]
    ignored: int                      # decision rows for clips outside this manifest (kept, not shown)
    outcome: dict[str, str]           # clip_id -> curation_outcome
    flags: dict[str, list[str]]       # clip_id -> curation flags
    per_class: dict[str, dict]        # class -> curate summary row
    masked: set[str]


class ReviewSession:
    """The manifest, media root and output files one review server works on."""

    def __init__(self, manifest: pd.DataFrame, media_root: str | os.PathLike, *,
                 decisions_path: str | os.PathLike, annotations_path: str | os.PathLike,
                 classes: Iterable[TargetClass] | None = None, reviewer: str = "", cap: int | None = None,
                 manifest_source: str = "<manifest>") -> None:
        self.media_root = Path(media_root)
        if not self.media_root.is_dir():
            raise InputError("media root is not a folder", file=self.media_root)
        self.manifest = manifest.reset_index(drop=True)
        for column in ("clip_id", "class", "split", "rank"):
            if column not in self.manifest.columns:
                raise InputError(f"manifest has no {column!r} column", file=manifest_source, field=column)
        self.context = AnnotationContext(self.manifest, self.media_root, classes)
        self.decisions_path = Path(decisions_path)
        self.annotations_path = Path(annotations_path)
        self.manifest_source = manifest_source
        self.reviewer = reviewer.strip()
        before = initial_selection(self.manifest)
        self.cap = resolve_cap(self.manifest, before, cap)
        mids = tuple(sorted({str(m) for m in self.manifest["mid"] if str(m)})) if "mid" in self.manifest else ()
        self.options = CurateOptions(cap=self.cap, target_mids=mids)
        self.class_split = {c["name"]: c.get("split", "") for c in self.context.categories}
        category_order = {c["name"]: i for i, c in enumerate(self.context.categories)}
        ordered = self.manifest.assign(_order=self.manifest["class"].map(category_order).fillna(len(category_order)),
                                       _rank=pd.to_numeric(self.manifest["rank"], errors="coerce"))
        ordered = ordered.sort_values(["_order", "_rank", "clip_id"], kind="mergesort")
        self.clip_ids: list[str] = [str(c) for c in ordered["clip_id"]]
        self.rows: dict[str, dict] = {str(r["clip_id"]): r for r in self.manifest.to_dict("records")}
        self._class_frames = {str(name): group for name, group in self.manifest.groupby("class", sort=False)}
        self.media: dict[str, dict[str, Path]] = {kind: {} for kind in MEDIA_COLUMNS}
        self.unsafe_paths: list[tuple[str, str, str]] = []
        for clip_id, row in self.rows.items():
            for kind, column in MEDIA_COLUMNS.items():
                raw = row.get(column)
                rel = media_relpath(raw)
                if rel is not None:
                    self.media[kind][clip_id] = self.media_root / rel
                elif raw is not None and str(raw).strip() not in ("", "nan"):
                    self.unsafe_paths.append((clip_id, column, str(raw)))
        self._masked_cache: tuple[tuple[int, int, int], frozenset[str]] | None = None
        # Fail at start, not on the first click, if an existing output file is unusable.
        if self.annotations_path.exists():
            open_annotations(self.annotations_path, self.context)
        self.snapshot()

    # ------------------------------------------------------------------ lookups
    def clip_row(self, clip_id: object) -> dict:
        """The manifest row of a clip named in a request: 400 if malformed, 404 if unknown."""
        try:
            validate_clip_id(clip_id)
        except InvalidYtidError as exc:
            raise ReviewError(400, str(exc)) from None
        row = self.rows.get(str(clip_id))
        if row is None:
            raise ReviewError(404, f"clip {clip_id!r} is not in the manifest {self.manifest_source}")
        return row

    def media_file(self, kind: str, clip_id: str) -> Path:
        """The file of one clip, found through the manifest only (never a path from the request)."""
        if kind not in MEDIA_COLUMNS:
            raise ReviewError(404, f"unknown media kind {kind!r}; expected one of {sorted(MEDIA_COLUMNS)}")
        self.clip_row(clip_id)
        path = self.media[kind].get(clip_id)
        if path is None:
            raise ReviewError(404, f"clip {clip_id!r} has no usable {MEDIA_COLUMNS[kind]} in the manifest")
        if not path.is_file():
            raise ReviewError(404, f"the {kind} of clip {clip_id!r} is missing from the media root")
        return path

    def maskable(self, clip_id: str) -> bool:
        return str(self.rows[clip_id].get("split", "")) in MASKED_SPLITS and clip_id in self.media["frame"]

    # ------------------------------------------------------------------ disk state
    def read_decisions(self) -> tuple[dict[str, Decision], int]:
        if not self.decisions_path.exists():
            return {}, 0
        every = read_decisions(self.decisions_path)
        known = {cid: d for cid, d in every.items() if cid in self.rows}
        return known, len(every) - len(known)

    def masked_clips(self) -> set[str]:
        """Clips with a mask in the file; re-read only when the file changed (it is MBs for 750 masks)."""
        try:
            stat = self.annotations_path.stat()
        except FileNotFoundError:
            return set()
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._masked_cache
        if cached is not None and cached[0] == key:
            return set(cached[1])
        coco = load_annotations(self.annotations_path)
        annotated = {ann["image_id"] for ann in coco["annotations"]}
        masked = {str(img.get("clip_id")) for img in coco["images"] if img["id"] in annotated}
        self._masked_cache = (key, frozenset(masked))
        return masked

    def snapshot(self, only_class: str | None = None) -> Snapshot:
        """Decisions, masks and the curate projection (of one class, or all); ~10 ms per class of 180 clips."""
        decisions, ignored = self.read_decisions()
        frame = self.manifest if only_class is None else self._class_frames[only_class]
        wanted = decisions if only_class is None else {
            cid: d for cid, d in decisions.items() if str(self.rows[cid]["class"]) == only_class}
        result, summary = curate(frame, wanted, self.options)
        ids = result["clip_id"].astype(str).tolist()
        outcome = dict(zip(ids, result["curation_outcome"].tolist()))
        flags = {cid: [f for f in str(text).split(",") if f] for cid, text in zip(ids, result["curation_flags"])}
        return Snapshot(decisions, ignored, outcome, flags, summary.per_class, self.masked_clips())

    # ------------------------------------------------------------------ JSON views
    def clip_record(self, clip_id: str, snap: Snapshot) -> dict:
        row = self.rows[clip_id]
        decision = snap.decisions.get(clip_id)
        return {
            "id": clip_id, "class": str(row["class"]), "split": str(row.get("split", "")),
            "rank": _int(row.get("rank")), "start": _float(row.get("start")), "end": _float(row.get("end")),
            "outcome": snap.outcome.get(clip_id, ""), "flags": snap.flags.get(clip_id, []),
            "fetch_status": _text(row.get("fetch_status")), "trim_flags": _text(row.get("trim_flags")),
            "frame_flags": _text(row.get("frame_flags")),
            "frame": clip_id in self.media["frame"], "audio": clip_id in self.media["audio"],
            "maskable": self.maskable(clip_id), "masked": clip_id in snap.masked,
            "decision": None if decision is None else {
                "decision": decision.decision, "reason": decision.reason, "reviewer": decision.reviewer,
                "time": decision.time},
        }

    def class_record(self, name: str, snap: Snapshot) -> dict:
        summary = snap.per_class.get(name, {})
        ids = [cid for cid in self._class_frames[name]["clip_id"].astype(str)]
        return {"name": name, "split": self.class_split.get(name, ""), "cap": self.cap, "total": len(ids),
                "selected": summary.get("selected", 0), "accepted": summary.get("accepted", 0),
                "rejected": summary.get("rejected", 0), "auto_rejected": summary.get("auto_rejected", 0),
                "undecided": summary.get("undecided", 0), "short": summary.get("short", 0),
                "flagged": sum(1 for cid in ids if snap.flags.get(cid)),
                "maskable": sum(1 for cid in ids if self.maskable(cid)),
                "masked": sum(1 for cid in ids if cid in snap.masked)}

    def classes_in_order(self) -> list[str]:
        return list(dict.fromkeys(str(self.rows[cid]["class"]) for cid in self.clip_ids))

    def state(self) -> dict:
        snap = self.snapshot()
        return {"reviewer": self.reviewer, "cap": self.cap, "masked_splits": list(MASKED_SPLITS),
                "reject_reasons": list(REJECT_REASONS),
                "files": {"manifest": self.manifest_source, "media": str(self.media_root),
                          "decisions": str(self.decisions_path), "annotations": str(self.annotations_path)},
                "ignored_decisions": snap.ignored,
                "classes": [self.class_record(name, snap) for name in self.classes_in_order()],
                "clips": [self.clip_record(cid, snap) for cid in self.clip_ids]}

    # ------------------------------------------------------------------ actions
    def decide(self, body: dict) -> dict:
        """Record (accept / reject) or remove (undecided) one clip's decision; returns the class's new view."""
        clip_id = body.get("clip_id")
        row = self.clip_row(clip_id)
        decision = body.get("decision")
        reason = _field(body, "reason", MAX_REASON)
        reviewer = _field(body, "reviewer", MAX_REVIEWER) or self.reviewer
        if decision == "undecided":
            remove_decision(self.decisions_path, clip_id)
        elif decision in ("accept", "reject"):
            if not reviewer:
                raise ReviewError(422, "no reviewer: type your name in the Reviewer box (or start the server "
                                       "with --reviewer NAME)")
            record_decision(self.decisions_path, make_decision(clip_id, decision, reason, reviewer,
                                                               source=self.decisions_path))
        else:
            raise ReviewError(400, f"'decision' must be 'accept', 'reject' or 'undecided', got {decision!r}")
        name = str(row["class"])
        snap = self.snapshot(only_class=name)
        return {"clip": self.clip_record(clip_id, snap), "class": self.class_record(name, snap),
                "outcomes": {cid: snap.outcome.get(cid, "") for cid in self._class_frames[name]["clip_id"]}}

    def mask(self, clip_id: str) -> dict:
        self.clip_row(clip_id)
        target = self.context.target(clip_id)
        runs, note = None, ""
        if self.annotations_path.exists():
            mask = mask_for_clip(load_annotations(self.annotations_path), clip_id)
            if mask is not None and mask.shape == (target.height, target.width):
                runs = mask_to_runs(mask)
            elif mask is not None:
                note = (f"the saved mask is {mask.shape[1]}x{mask.shape[0]} but the frame is now "
                        f"{target.width}x{target.height}; draw it again")
        return {"clip_id": clip_id, "class": target.class_name, "split": target.split, "width": target.width,
                "height": target.height, "runs": runs, "note": note}

    def save_mask(self, clip_id: str, body: dict) -> dict:
        self.clip_row(clip_id)
        mask = runs_to_mask(body.get("runs"), body.get("width"), body.get("height"))
        annotation = save_clip_mask(self.annotations_path, self.context, clip_id, mask)
        return {"clip_id": clip_id, "area": annotation["area"], "bbox": annotation["bbox"], "masked": True}

    def delete_mask(self, clip_id: str) -> dict:
        self.clip_row(clip_id)
        removed = delete_clip_masks(self.annotations_path, self.context, clip_id)
        return {"clip_id": clip_id, "removed": removed, "masked": False}


def _field(body: dict, name: str, limit: int) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ReviewError(400, f"'{name}' must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise ReviewError(400, f"'{name}' is longer than {limit} characters")
    return value.strip()


def _text(value: object) -> str:
    text = "" if value is None else str(value).strip()
    return "" if text.lower() == "nan" else text


def _int(value: object) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number
