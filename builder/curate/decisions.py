"""The human curation decision list: one CSV, defined here and only here.

Format (UTF-8, a header line, one decision per line; a spreadsheet's BOM is accepted)::

    clip_id,decision,reason,reviewer,time
    abcdefghijk_30000,accept,,ana,2026-05-09T10:00:00+00:00
    bcdefghijkl_0,reject,"no instrument on screen",ben,2026-05-09T10:01:12+00:00

* ``clip_id``  -- ``<11-char YouTube ID>_<start ms>``; must be a clip of the manifest.
* ``decision`` -- ``accept`` or ``reject`` (lower case).
* ``reason``   -- free text; required for ``reject``, optional for ``accept``.
* ``reviewer`` -- who decided; required (free text, e.g. a name or initials).
* ``time``     -- optional column; when present each value is empty or an ISO 8601
  timestamp (``datetime.fromisoformat``). Informational only: never used to order rows.

Columns may come in any order; other columns are errors (a typo must not drop data).

One row per clip. A second row for the same clip is an error naming both lines:
an *exact duplicate* (every field equal), a *conflicting decision* (accept vs
reject), or a *repeated decision* (same decision, other reason/reviewer/time).
With ``latest_wins=True`` (``curate --latest-wins``) the row nearest the end of
the file wins instead -- the mode for a journal that only ever appends.

Writers (:func:`record_decision`, :func:`remove_decision`, :func:`write_decisions`)
take an exclusive lock on ``<file>.lock`` and replace the file atomically, so two
writers (two browser tabs, a script) never lose each other's rows and a killed
writer leaves the old or the new file, never half of one. :func:`record_decision`
replaces the clip's earlier row (the file stays valid without ``--latest-wins``).
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from builder.errors import InputError
from builder.io.atomic import atomic_open
from builder.manifest.ids import CLIP_ID_RE

DECISION_COLUMNS = ("clip_id", "decision", "reason", "reviewer", "time")
REQUIRED_DECISION_COLUMNS = ("clip_id", "decision", "reason", "reviewer")
DECISIONS = ("accept", "reject")


@dataclass(frozen=True)
class Decision:
    clip_id: str
    decision: str            # "accept" | "reject"
    reason: str = ""
    reviewer: str = ""
    time: str = ""           # ISO 8601 or ""
    line: int = 0            # line in the file it was read from (0 = not read from a file)

    def row(self) -> list[str]:
        return [self.clip_id, self.decision, self.reason, self.reviewer, self.time]

    def same_fields(self, other: Decision) -> bool:
        return self.row() == other.row()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def make_decision(clip_id: str, decision: str, reason: str = "", reviewer: str = "", time: str | None = None,
                  *, source: str | os.PathLike = "<decision>") -> Decision:
    """A validated decision (``time`` None = now, UTC); raises InputError naming the field."""
    made = Decision(str(clip_id).strip(), str(decision).strip(), str(reason).strip(), str(reviewer).strip(),
                    now_iso() if time is None else str(time).strip())
    check_decision(made, source)
    return made


def check_decision(decision: Decision, source: str | os.PathLike = "<decision>") -> None:
    """Field checks for one decision; errors name file, line and field."""
    line = decision.line or None
    if not CLIP_ID_RE.fullmatch(decision.clip_id):
        raise InputError(f"invalid clip ID {decision.clip_id!r} (expected <11-char YouTube ID>_<start ms>)",
                         file=source, line=line, field="clip_id")
    if decision.decision not in DECISIONS:
        raise InputError(f"decision must be one of {list(DECISIONS)}, got {decision.decision!r}",
                         file=source, line=line, field="decision")
    if decision.decision == "reject" and not decision.reason:
        raise InputError("a rejection needs a reason", file=source, line=line, field="reason")
    if not decision.reviewer:
        raise InputError("empty reviewer (who made the decision?)", file=source, line=line, field="reviewer")
    if decision.time:
        try:
            datetime.fromisoformat(decision.time)
        except ValueError:
            raise InputError(f"time {decision.time!r} is not an ISO 8601 timestamp (e.g. 2026-05-09T10:00:00+00:00)",
                             file=source, line=line, field="time") from None


# --------------------------------------------------------------------------- reading
def parse_decisions(path: str | os.PathLike) -> list[Decision]:
    """Every row of a decision CSV, validated field by field (no cross-row checks)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("decision list not found", file=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text: {exc}", file=path) from None
    return parse_decision_text(text, path)


def parse_decision_text(text: str, source: str | os.PathLike = "<decisions>") -> list[Decision]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", file=source, line=1) from None
    if header is None:
        raise InputError(f"empty file; expected the header {','.join(DECISION_COLUMNS)}", file=source, line=1)
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in DECISION_COLUMNS]
    missing = [h for h in REQUIRED_DECISION_COLUMNS if h not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise InputError(f"header must name the columns {list(REQUIRED_DECISION_COLUMNS)} (+ optional 'time'), "
                         f"each once; got {header}", file=source, line=1)
    out: list[Decision] = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", file=source, line=reader.line_num) from None
        line = reader.line_num
        if not values or values == [""]:
            continue  # blank line
        if len(values) != len(header):
            raise InputError(f"expected {len(header)} fields ({','.join(header)}), got {len(values)}",
                             file=source, line=line)
        row = dict(zip(header, (v.strip() for v in values), strict=True))
        decision = Decision(row["clip_id"], row["decision"], row["reason"], row["reviewer"], row.get("time", ""),
                            line=line)
        check_decision(decision, source)
        out.append(decision)
    return out


def resolve_decisions(rows: Iterable[Decision], source: str | os.PathLike = "<decisions>", *,
                      known_clips: Iterable[str] | None = None, latest_wins: bool = False) -> dict[str, Decision]:
    """clip_id -> the decision that applies; duplicates/conflicts/unknown clips are errors (see module doc)."""
    known = set(known_clips) if known_clips is not None else None
    by_clip: dict[str, Decision] = {}
    for row in rows:
        if known is not None and row.clip_id not in known:
            raise InputError(f"unknown clip {row.clip_id!r}: not in the manifest", file=source, line=row.line or None,
                             field="clip_id")
        first = by_clip.get(row.clip_id)
        if first is not None and not latest_wins:
            if first.same_fields(row):
                kind = "exact duplicate of line"
            elif first.decision != row.decision:
                kind = f"conflicting decision: {row.decision!r} here, {first.decision!r} on line"
            else:
                kind = "repeated decision (one row per clip) -- first on line"
            raise InputError(f"clip {row.clip_id!r}: {kind} {first.line} (lines {first.line} and {row.line}; "
                             "keep one row, or pass --latest-wins to let the later row win)",
                             file=source, line=row.line or None, field="clip_id")
        by_clip[row.clip_id] = row
    return by_clip


def read_decisions(path: str | os.PathLike, *, known_clips: Iterable[str] | None = None,
                   latest_wins: bool = False) -> dict[str, Decision]:
    """Parse and resolve a decision CSV: clip_id -> Decision."""
    return resolve_decisions(parse_decisions(path), path, known_clips=known_clips, latest_wins=latest_wins)


# --------------------------------------------------------------------------- writing
def format_decisions(decisions: Iterable[Decision]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(DECISION_COLUMNS)
    for decision in decisions:
        writer.writerow(decision.row())
    return buffer.getvalue()


@contextlib.contextmanager
def locked(path: str | os.PathLike) -> Iterator[None]:
    """Exclusive advisory lock on ``<path>.lock`` (released by the kernel if the holder dies)."""
    lock_path = Path(f"{path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_decisions(path: str | os.PathLike, decisions: Iterable[Decision]) -> None:
    """Replace the whole file (atomically, under the lock) with ``decisions`` in the given order."""
    decisions = list(decisions)
    for decision in decisions:
        check_decision(decision, path)
    with locked(path):
        _write_unlocked(path, decisions)


def _write_unlocked(path: str | os.PathLike, decisions: list[Decision]) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(format_decisions(decisions))


def _existing(path: Path) -> list[Decision]:
    return parse_decisions(path) if path.is_file() else []


def record_decision(path: str | os.PathLike, decision: Decision) -> list[Decision]:
    """Upsert: drop the clip's earlier row(s), append ``decision``; returns the rows now in the file."""
    check_decision(decision, path)
    path = Path(path)
    with locked(path):
        rows = [d for d in _existing(path) if d.clip_id != decision.clip_id]
        rows.append(_unnumbered(decision))
        _write_unlocked(path, rows)
    return rows


def remove_decision(path: str | os.PathLike, clip_id: str) -> bool:
    """Delete the clip's row(s) (back to undecided); returns whether there was one."""
    path = Path(path)
    with locked(path):
        rows = _existing(path)
        kept = [d for d in rows if d.clip_id != clip_id]
        if len(kept) != len(rows):
            _write_unlocked(path, kept)
        return len(kept) != len(rows)


def _unnumbered(decision: Decision) -> Decision:
    return Decision(**{f.name: getattr(decision, f.name) for f in fields(Decision) if f.name != "line"})
