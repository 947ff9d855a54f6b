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

Every read comes from disk (the decision CSV, ``annotations.json``; re-parsed
only when their bytes changed), so a page sees what any other writer saved.
Each decision and mask has a version (:mod:`builder.review.changes`); a write
that names the version it was based on (``base``) is refused with 409 and the
clip's current state when the file holds another one, so two pages never
overwrite each other silently. The check and the write happen under a lock of
their own (``<file>.review.lock``) that every review server takes; a script
writing with the plain library calls is not checked against. Per-class counts are the
projection of ``curate`` with the current decisions (the same function, cap and
flags), so "selected / cap" on the page is what ``curate`` would select.

Media files are found only through the manifest: a request names a clip id and
a kind (frame / audio); the path comes from that clip's ``frame_path`` /
``audio_path`` column, relative to the media root, and paths that are absolute
or climb out with ``..`` are never served.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.annotate.coco import (
    MASKED_SPLITS,
    AnnotationContext,
    annotations_for_clip,
    delete_clip_masks,
    load_annotations,
    mask_for_clip,
    open_annotations,
    save_clip_mask,
)
from builder.audioset.classes import TargetClass
from builder.curate.decisions import Decision, locked, make_decision, record_decision, remove_decision
from builder.curate.stage import CurateOptions, curate, initial_selection, resolve_cap
from builder.errors import InputError
from builder.manifest.ids import InvalidYtidError, validate_clip_id
from builder.review.changes import DiskView, MaskState, decision_version, mask_version
from builder.review.payload import MAX_MASK_SIDE, ReviewError, mask_to_runs, media_relpath, runs_to_mask  # noqa: F401
from builder.review.payload import base_version as _base
from builder.review.payload import field as _field
from builder.review.payload import to_float as _float
from builder.review.payload import to_int as _int
from builder.review.payload import to_text as _text

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


@dataclass
class Snapshot:
    """What the disk says right now: decisions (manifest clips only), the curate projection, masked clips."""
    decisions: dict[str, Decision]
    ignored: int                      # decision rows for clips outside this manifest (kept, not shown)
    outcome: dict[str, str]           # clip_id -> curation_outcome
    flags: dict[str, list[str]]       # clip_id -> curation flags
    per_class: dict[str, dict]        # class -> curate summary row
    masks: dict[str, MaskState]       # clips with a mask


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
        self.disk = DiskView(self.decisions_path, self.annotations_path, self.rows)
        self.instance = secrets.token_hex(4)    # a page holding another server run's sequence reloads
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
        return self.disk.decisions()

    def masked_clips(self) -> set[str]:
        return set(self.disk.masks())

    def snapshot(self, only_class: str | None = None) -> Snapshot:
        """Decisions, masks and the curate projection (of one class, or all); ~10 ms per class of 180 clips."""
        decisions, ignored = self.read_decisions()
        frame = self.manifest if only_class is None else self._class_frames[only_class]
        wanted = decisions if only_class is None else {
            cid: d for cid, d in decisions.items() if str(self.rows[cid]["class"]) == only_class}
        result, summary = curate(frame, wanted, self.options)
        ids = result["clip_id"].astype(str).tolist()
        outcome = dict(zip(ids, result["curation_outcome"].tolist(), strict=True))
        flags = {cid: [f for f in str(text).split(",") if f]
                 for cid, text in zip(ids, result["curation_flags"], strict=True)}
        return Snapshot(decisions, ignored, outcome, flags, summary.per_class, self.disk.masks())

    # ------------------------------------------------------------------ JSON views
    def clip_record(self, clip_id: str, snap: Snapshot) -> dict:
        row = self.rows[clip_id]
        decision = snap.decisions.get(clip_id)
        offset, seconds = _float(row.get("window_offset")), _float(row.get("window_seconds"))
        mask = snap.masks.get(clip_id)
        record = {
            "id": clip_id, "class": str(row["class"]), "split": str(row.get("split", "")),
            "rank": _int(row.get("rank")), "start": _float(row.get("start")), "end": _float(row.get("end")),
            "outcome": snap.outcome.get(clip_id, ""), "flags": snap.flags.get(clip_id, []),
            "fetch_status": _text(row.get("fetch_status")), "trim_flags": _text(row.get("trim_flags")),
            "frame_flags": _text(row.get("frame_flags")),
            "frame": clip_id in self.media["frame"], "audio": clip_id in self.media["audio"],
            "maskable": self.maskable(clip_id), "masked": mask is not None,
            # the audio window, seconds from the segment start (the segment is start..end)
            "window": [offset, seconds] if offset is not None and seconds else None,
            "decision": None if decision is None else {
                "decision": decision.decision, "reason": decision.reason, "reviewer": decision.reviewer,
                "time": decision.time},
        }
        # Versions only where there is something (most clips have neither): the state stays small.
        if decision is not None:
            record["version"] = decision_version(decision)
        if mask is not None:
            record["mask_version"] = mask.version
        return record

    def class_record(self, name: str, snap: Snapshot) -> dict:
        summary = snap.per_class.get(name, {})
        ids = [cid for cid in self._class_frames[name]["clip_id"].astype(str)]
        return {"name": name, "split": self.class_split.get(name, ""), "cap": self.cap, "total": len(ids),
                "selected": summary.get("selected", 0), "accepted": summary.get("accepted", 0),
                "rejected": summary.get("rejected", 0), "auto_rejected": summary.get("auto_rejected", 0),
                "undecided": summary.get("undecided", 0), "short": summary.get("short", 0),
                "flagged": sum(1 for cid in ids if snap.flags.get(cid)),
                "maskable": sum(1 for cid in ids if self.maskable(cid)),
                "masked": sum(1 for cid in ids if cid in snap.masks)}

    def classes_in_order(self) -> list[str]:
        return list(dict.fromkeys(str(self.rows[cid]["class"]) for cid in self.clip_ids))

    def state(self) -> dict:
        seq = self.disk.seq                    # before the read: a change racing it is sent again, never lost
        snap = self.snapshot()
        return {"instance": self.instance, "seq": seq, "reviewer": self.reviewer, "cap": self.cap,
                "masked_splits": list(MASKED_SPLITS), "reject_reasons": list(REJECT_REASONS),
                "files": {"manifest": self.manifest_source, "media": str(self.media_root),
                          "decisions": str(self.decisions_path), "annotations": str(self.annotations_path)},
                "ignored_decisions": snap.ignored,
                "classes": [self.class_record(name, snap) for name in self.classes_in_order()],
                "clips": [self.clip_record(cid, snap) for cid in self.clip_ids]}

    # ------------------------------------------------------------------ actions
    def decide(self, body: dict) -> dict:
        """Record (accept / reject) or remove (undecided) one clip's decision; returns the class's new view.

        ``base``, if given, is the version the page saw: another one in the file is a 409 with the
        clip's current view under ``conflict``. ``time`` (ISO 8601) restores an earlier decision as it
        was (the page's undo); by default it is now.
        """
        raw_id = body.get("clip_id")
        self.clip_row(raw_id)  # 400 or 404 unless it names a clip of the manifest
        clip_id = str(raw_id)
        decision = body.get("decision")
        reason = _field(body, "reason", MAX_REASON)
        reviewer = _field(body, "reviewer", MAX_REVIEWER) or self.reviewer
        base = _base(body)
        time = _field(body, "time", 40) or None
        if decision not in ("accept", "reject", "undecided"):
            raise ReviewError(400, f"'decision' must be 'accept', 'reject' or 'undecided', got {decision!r}")
        made = None
        if decision != "undecided":
            if not reviewer:
                raise ReviewError(422, "no reviewer: type your name in the Reviewer box (or start the server "
                                       "with --reviewer NAME)")
            made = make_decision(clip_id, decision, reason, reviewer, time, source=self.decisions_path)
        with locked(f"{self.decisions_path}.review"):
            current = self.disk.decisions()[0].get(clip_id)
            if base is not None and decision_version(current) != base:
                raise ReviewError(409, _changed_by(clip_id, current), {"conflict": {
                    "kind": "decision", **self.class_view(clip_id)}})
            if made is None:
                remove_decision(self.decisions_path, clip_id)
            else:
                record_decision(self.decisions_path, made)
        return self.class_view(clip_id)

    def class_view(self, clip_id: str) -> dict:
        """One clip's record with its class's counts and curate outcomes (they move with any decision)."""
        name = str(self.rows[clip_id]["class"])
        snap = self.snapshot(only_class=name)
        return {"clip": self.clip_record(clip_id, snap), "class": self.class_record(name, snap),
                "outcomes": {cid: snap.outcome.get(cid, "") for cid in self._class_frames[name]["clip_id"]}}

    def changes(self, since: int, instance: str) -> dict:
        """The clips changed after sequence ``since`` (by anyone), their classes' counts and outcomes."""
        changed = self.disk.changed_since(since) if instance == self.instance else None
        if changed is None:
            return {"instance": self.instance, "reload": True}
        seq = self.disk.seq
        classes = sorted({str(self.rows[cid]["class"]) for cid in changed})
        snap = self.snapshot() if len(classes) > 3 else None
        views: list[tuple[str, Snapshot]] = []
        for name in classes:
            views.append((name, snap or self.snapshot(only_class=name)))
        return {"instance": self.instance, "seq": seq,
                "clips": [self.clip_record(cid, s) for name, s in views for cid in sorted(changed)
                          if str(self.rows[cid]["class"]) == name],
                "classes": [self.class_record(name, s) for name, s in views],
                "outcomes": {cid: s.outcome.get(cid, "") for name, s in views
                             for cid in self._class_frames[name]["clip_id"]}}

    def mask(self, clip_id: str) -> dict:
        self.clip_row(clip_id)
        target = self.context.target(clip_id)
        runs, note, version = None, "", ""
        if self.annotations_path.exists():
            coco = load_annotations(self.annotations_path)
            mask = mask_for_clip(coco, clip_id)
            version = mask_version(annotations_for_clip(coco, clip_id))
            if mask is not None and mask.shape == (target.height, target.width):
                runs = mask_to_runs(mask)
            elif mask is not None:
                note = (f"the saved mask is {mask.shape[1]}x{mask.shape[0]} but the frame is now "
                        f"{target.width}x{target.height}; draw it again")
        return {"clip_id": clip_id, "class": target.class_name, "split": target.split, "width": target.width,
                "height": target.height, "runs": runs, "note": note, "version": version}

    def save_mask(self, clip_id: str, body: dict) -> dict:
        self.clip_row(clip_id)
        mask = runs_to_mask(body.get("runs"), body.get("width"), body.get("height"))
        with locked(f"{self.annotations_path}.review"):
            self._check_mask_base(clip_id, _base(body))
            annotation = save_clip_mask(self.annotations_path, self.context, clip_id, mask)
        return {"clip_id": clip_id, "area": annotation["area"], "bbox": annotation["bbox"], "masked": True,
                "version": mask_version([annotation])}

    def delete_mask(self, clip_id: str, body: dict | None = None) -> dict:
        self.clip_row(clip_id)
        with locked(f"{self.annotations_path}.review"):
            self._check_mask_base(clip_id, _base(body or {}))
            removed = delete_clip_masks(self.annotations_path, self.context, clip_id)
        return {"clip_id": clip_id, "removed": removed, "masked": False, "version": ""}

    def _check_mask_base(self, clip_id: str, base: str | None) -> None:
        current = self.disk.masks().get(clip_id)
        if base is not None and (current.version if current else "") != base:
            what = f"saved a mask of {current.area} px" if current else "deleted the mask"
            raise ReviewError(409, f"someone else {what} of {clip_id} after you opened it", {"conflict": {
                "kind": "mask", "clip_id": clip_id, "masked": current is not None,
                "version": current.version if current else "", "area": current.area if current else 0}})


def _changed_by(clip_id: str, current: Decision | None) -> str:
    if current is None:
        return f"{clip_id} was set back to undecided by someone else since you loaded it"
    word = "accepted" if current.decision == "accept" else "rejected"
    return f"{clip_id} was {word} by {current.reviewer or 'someone'} since you loaded it"
