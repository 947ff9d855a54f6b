"""AudioSet metadata: the ontology and the segment CSVs.

Segment lists come in two shapes and both are accepted:

* Google's: three ``#`` comment lines, then rows like
  ``--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"`` (a space after each
  field comma, labels quoted).
* Third-party copies of the unbalanced list (split in 41 parts) where the
  three comment lines read ``empty``.

Files are streamed line by line (2.08M rows in a few seconds and a few MB of
memory; ``bench/parse_audioset.py``) and may be gzip-compressed (``.csv.gz``).
"""
from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from builder.errors import InputError

_YTID = re.compile(r"[A-Za-z0-9_-]{11}")
HEADER_FIELDS = "YTID, start_seconds, end_seconds, positive_labels"

# Standard file names (Google's) -> the source name recorded in manifests.
SOURCE_FILES = {
    "balanced_train": "balanced_train_segments.csv",
    "eval": "eval_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
}
UNBALANCED_PARTS_DIR = "unbalanced_partial_csvs"


# --------------------------------------------------------------------------- ontology

@dataclass
class OntologyEntry:
    mid: str
    name: str
    child_ids: tuple[str, ...]
    restrictions: tuple[str, ...] = ()


@dataclass
class Ontology:
    entries: dict[str, OntologyEntry]
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parents: dict[str, list[str]] = {mid: [] for mid in self.entries}
        for entry in self.entries.values():
            for child in entry.child_ids:
                parents.setdefault(child, []).append(entry.mid)
        self.parents = {mid: tuple(ps) for mid, ps in parents.items()}

    def __contains__(self, mid: object) -> bool:
        return mid in self.entries

    def name(self, mid: str) -> str:
        return self.entries[mid].name

    def descendants(self, mid: str) -> set[str]:
        """All MIDs strictly below ``mid`` (the ontology is a DAG: an entry may have several parents)."""
        out: set[str] = set()
        stack = list(self.entries[mid].child_ids)
        while stack:
            child = stack.pop()
            if child not in out:
                out.add(child)
                stack.extend(self.entries[child].child_ids if child in self.entries else ())
        return out

    def closure(self, mids: Iterable[str]) -> set[str]:
        """``mids`` together with all their descendants."""
        out: set[str] = set()
        for mid in mids:
            out.add(mid)
            out |= self.descendants(mid)
        return out

    def paths(self, mid: str) -> list[list[str]]:
        """Every root-to-entry path, as lists of display names."""
        ps = self.parents.get(mid, ())
        if not ps:
            return [[self.name(mid)]]
        return [p + [self.name(mid)] for parent in ps for p in self.paths(parent)]


def load_ontology(path: str | os.PathLike) -> Ontology:
    path = Path(path)
    if not path.is_file():
        raise InputError("ontology file not found (download it with `llinet-build metadata`)", file=path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=path, line=exc.lineno) from exc
    if not isinstance(raw, list):
        raise InputError("expected a JSON list of ontology entries", file=path)
    entries: dict[str, OntologyEntry] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("name"), str):
            raise InputError(f"entry {i} lacks a string 'id' and 'name'", file=path, field="id")
        entries[item["id"]] = OntologyEntry(
            mid=item["id"], name=item["name"],
            child_ids=tuple(item.get("child_ids", ())),
            restrictions=tuple(item.get("restrictions", ())),
        )
    return Ontology(entries)


# --------------------------------------------------------------------------- segments

class Segment(NamedTuple):
    ytid: str
    start: float
    end: float
    labels: tuple[str, ...]
    line: int


@dataclass
class ParseStats:
    """Rows read and rows skipped (with ``skip_bad_rows``), per file."""
    rows: int = 0
    skipped: int = 0
    examples: list[str] = field(default_factory=list)  # first few skipped-row errors

    def add_skip(self, error: InputError, keep: int = 20) -> None:
        self.skipped += 1
        if len(self.examples) < keep:
            self.examples.append(str(error))


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _number(text: str, path: Path, lineno: int, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"expected a number of seconds, got {text.strip()!r}",
                         file=path, line=lineno, field=name) from None
    if not math.isfinite(value) or value < 0:
        raise InputError(f"expected a finite, non-negative number of seconds, got {text.strip()!r}",
                         file=path, line=lineno, field=name)
    return value


def _parse_row(line: str, path: Path, lineno: int, known_mids: frozenset[str] | set[str] | None) -> Segment:
    parts = line.split(",", 3)
    if len(parts) != 4:
        raise InputError(f"expected 4 fields ({HEADER_FIELDS}), got {len(parts)}",
                         file=path, line=lineno, field="positive_labels" if len(parts) == 3 else None)
    ytid = parts[0].strip()
    if not _YTID.fullmatch(ytid):
        raise InputError(f"malformed YouTube ID {ytid!r} (expected 11 chars of [A-Za-z0-9_-])",
                         file=path, line=lineno, field="YTID")
    start = _number(parts[1], path, lineno, "start_seconds")
    end = _number(parts[2], path, lineno, "end_seconds")
    if end <= start:
        raise InputError(f"end_seconds {end:g} must be greater than start_seconds {start:g}",
                         file=path, line=lineno, field="end_seconds")
    raw = parts[3].strip()
    if len(raw) >= 2 and raw[0] == '"' and raw[-1] == '"':
        raw = raw[1:-1]
    elif "," in raw or '"' in raw:
        raise InputError(f"expected 4 fields ({HEADER_FIELDS}); labels with commas must be quoted",
                         file=path, line=lineno, field="positive_labels")
    labels = tuple(label.strip() for label in raw.split(","))
    if not raw or any(not label for label in labels):
        raise InputError("empty label in positive_labels", file=path, line=lineno, field="positive_labels")
    if known_mids is not None:
        for label in labels:
            if label not in known_mids:
                raise InputError(f"unknown label MID {label!r} (not in the ontology)",
                                 file=path, line=lineno, field="positive_labels")
    return Segment(ytid, start, end, labels, lineno)


def iter_segments(path: str | os.PathLike, *, known_mids: frozenset[str] | set[str] | None = None,
                  skip_bad_rows: bool = False, stats: ParseStats | None = None) -> Iterator[Segment]:
    """Stream the segments of one AudioSet CSV.

    Raises :class:`InputError` naming file, line and field for the first bad
    row, unless ``skip_bad_rows`` is set; then bad rows are counted in
    ``stats`` and skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("segment list not found", file=path)
    stats = stats if stats is not None else ParseStats()
    in_header = True
    with _open_text(path) as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            if in_header and line.strip() == "empty":
                continue  # the three-`empty`-lines variant of the unbalanced parts
            in_header = False
            try:
                segment = _parse_row(line, path, lineno, known_mids)
            except InputError as exc:
                if not skip_bad_rows:
                    raise
                stats.add_skip(exc)
                continue
            stats.rows += 1
            yield segment


def discover_segment_files(metadata_dir: str | os.PathLike,
                           sources: Iterable[str] = tuple(SOURCE_FILES)) -> dict[str, list[Path]]:
    """Map each source name to its file(s) in a metadata folder.

    The unbalanced list may be one file (Google's) or the parts in
    ``unbalanced_partial_csvs/``; any file may also be gzip-compressed.
    """
    root = Path(metadata_dir)
    found: dict[str, list[Path]] = {}
    for source in sources:
        if source not in SOURCE_FILES:
            raise InputError(f"unknown segment source {source!r}; expected one of {sorted(SOURCE_FILES)}")
        name = SOURCE_FILES[source]
        candidates = [root / name, root / (name + ".gz")]
        files = [p for p in candidates if p.is_file()][:1]
        if not files and source == "unbalanced_train":
            files = sorted((root / UNBALANCED_PARTS_DIR).glob("*.csv")) + \
                sorted((root / UNBALANCED_PARTS_DIR).glob("*.csv.gz"))
        if not files:
            parts = f", or {UNBALANCED_PARTS_DIR}/" if source == "unbalanced_train" else ""
            raise InputError(f"no {name} (or .gz{parts}) found; run `llinet-build metadata --out DIR` first",
                             file=root)
        found[source] = files
    return found
