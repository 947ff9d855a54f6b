"""What the review files say now, per clip versions, and a log of which clips changed.

Two pages (two tabs, two reviewers, two servers on one file) must never replace
each other's work silently. Every decision and mask therefore has a *version*:
a short hash of what is stored for the clip (the decision row; the clip's
COCO segmentation). A page sends the version its change was based on; the
session compares it with the file under a lock and answers 409 when they
differ (see :mod:`builder.review.state`).

The files are re-read only when their bytes changed (a content hash, not the
mtime, whose granularity can hide two quick writes). Each read that finds new
content is diffed against the previous one, and the clips whose version moved
are appended to a change log with a sequence number: a page that knows
sequence ``n`` asks for the clips changed since ``n`` and gets only those, no
matter who wrote them (this server, another one, a script).
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.annotate.coco import load_annotations
from builder.curate.decisions import Decision, parse_decision_text, resolve_decisions
from builder.errors import InputError

# Sequence numbers kept; a page further behind than that reloads the whole state.
LOG_LENGTH = 2000


def decision_version(decision: Decision | None) -> str:
    """'' for no decision, else a 12-hex-digit hash of the row (decision, reason, reviewer, time)."""
    if decision is None:
        return ""
    return _digest("\x1f".join(decision.row()))


def mask_version(annotations: Iterable[dict]) -> str:
    """'' for no mask, else a hash of the clip's segmentations (category, size, RLE counts)."""
    parts = [[a.get("category_id"), a["segmentation"].get("size"), a["segmentation"].get("counts")]
             if isinstance(a.get("segmentation"), dict) else [a.get("category_id"), a.get("segmentation")]
             for a in sorted(annotations, key=lambda a: a["id"])]
    return _digest(json.dumps(parts, sort_keys=True, separators=(",", ":"))) if parts else ""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=6).hexdigest()


@dataclass(frozen=True)
class MaskState:
    version: str
    area: int


class DiskView:
    """Cached, change-logged reads of the decision CSV and the COCO file (thread-safe)."""

    def __init__(self, decisions_path: Path, annotations_path: Path, known_clips: Iterable[str]) -> None:
        self.decisions_path = decisions_path
        self.annotations_path = annotations_path
        self.known = frozenset(known_clips)
        self._lock = threading.Lock()
        self._decisions_read = self._masks_read = False
        self._decision_key: bytes | None = None
        self._decisions: dict[str, Decision] = {}
        self._ignored = 0
        self._mask_key: bytes | None = None
        self._masks: dict[str, MaskState] = {}
        self.seq = 0
        self._log: list[tuple[int, frozenset[str]]] = []

    # ------------------------------------------------------------------ reads
    def decisions(self) -> tuple[dict[str, Decision], int]:
        """clip -> decision for the manifest's clips, and how many rows name other clips."""
        data = _read(self.decisions_path)
        key = None if data is None else hashlib.blake2b(data).digest()
        with self._lock:
            if key != self._decision_key or not self._decisions_read:
                if data is None:
                    every: dict[str, Decision] = {}
                else:
                    try:
                        text = data.decode("utf-8-sig")
                    except UnicodeDecodeError as exc:
                        raise InputError(f"not UTF-8 text: {exc}", file=self.decisions_path) from None
                    every = resolve_decisions(parse_decision_text(text, self.decisions_path), self.decisions_path)
                known = {cid: d for cid, d in every.items() if cid in self.known}
                old = self._decisions
                changed = {cid for cid in old.keys() | known.keys()
                           if (old[cid].row() if cid in old else None) != (known[cid].row() if cid in known else None)}
                if self._decisions_read:        # the first read is the baseline, not a change
                    self._note(changed)
                self._decisions, self._ignored, self._decision_key = known, len(every) - len(known), key
                self._decisions_read = True
            return dict(self._decisions), self._ignored

    def masks(self) -> dict[str, MaskState]:
        """clip -> version and area of its mask, for the clips that have one."""
        data = _read(self.annotations_path)
        key = None if data is None else hashlib.blake2b(data).digest()
        with self._lock:
            if key != self._mask_key or not self._masks_read:
                masks: dict[str, MaskState] = {}
                if data is not None:
                    coco = load_annotations(self.annotations_path)
                    by_image: dict[object, list[dict]] = {}
                    for ann in coco["annotations"]:
                        by_image.setdefault(ann["image_id"], []).append(ann)
                    for image in coco["images"]:
                        anns = by_image.get(image["id"])
                        if anns:
                            masks[str(image.get("clip_id"))] = MaskState(
                                mask_version(anns), int(sum(int(a.get("area") or 0) for a in anns)))
                old = self._masks
                if self._masks_read:
                    self._note({cid for cid in old.keys() | masks.keys() if old.get(cid) != masks.get(cid)})
                self._masks, self._mask_key, self._masks_read = masks, key, True
            return dict(self._masks)

    # ------------------------------------------------------------------ the change log
    def _note(self, changed: set[str]) -> None:
        changed &= self.known
        if not changed:
            return
        self.seq += 1
        self._log.append((self.seq, frozenset(changed)))
        del self._log[:-LOG_LENGTH]

    def changed_since(self, seq: int) -> set[str] | None:
        """Clips changed after sequence ``seq`` (refresh first); None if the log no longer reaches back."""
        self.decisions()
        self.masks()
        with self._lock:
            if seq > self.seq:
                return None                      # a sequence of another server's run
            if seq == self.seq:
                return set()
            if not self._log or self._log[0][0] > seq + 1:
                return None
            return set().union(*(ids for number, ids in self._log if number > seq))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
