"""Target class lists: load, validate and resolve names against the ontology.

A class list is a CSV with columns ``name, mid, display_name, split``
(``manifests/instrument32/classes.csv``). ``split`` is ``train`` (seen) or
``test`` (unseen).
"""
from __future__ import annotations

import csv
import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.audioset.parse import Ontology
from builder.errors import InputError
from builder.io.atomic import atomic_open

CLASS_COLUMNS = ("name", "mid", "display_name", "split")
CLASS_SPLITS = ("train", "test")


@dataclass(frozen=True)
class TargetClass:
    name: str
    mid: str
    display_name: str
    split: str


def _norm(text: str) -> str:
    """Case-, space- and punctuation-insensitive key: 'Steel pan' == 'Steelpan'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _aliases(display_name: str) -> list[str]:
    """'Marimba, xylophone' answers to 'Marimba' and 'xylophone' as well as the full name."""
    parts = [p.strip() for p in display_name.split(",")]
    return [display_name] + [p for p in parts if p and p != display_name]


def load_classes(path: str | os.PathLike) -> list[TargetClass]:
    """Read and structurally validate a class list CSV (names, splits, duplicates)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("class list not found", file=path)
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in CLASS_COLUMNS if c not in header]
        if missing:
            raise InputError(f"missing column(s) {missing}; expected {list(CLASS_COLUMNS)}", file=path, line=1)
        classes = []
        for lineno, row in enumerate(reader, start=2):
            for col in CLASS_COLUMNS:
                if not (row.get(col) or "").strip():
                    raise InputError("empty value", file=path, line=lineno, field=col)
            split = row["split"].strip()
            if split not in CLASS_SPLITS:
                raise InputError(f"split must be one of {CLASS_SPLITS}, got {split!r}",
                                 file=path, line=lineno, field="split")
            classes.append((lineno, TargetClass(row["name"].strip(), row["mid"].strip(),
                                                row["display_name"].strip(), split)))
    check_unique(classes, path)
    return [c for _, c in classes]


def check_unique(numbered: list[tuple[int, TargetClass]], path: str | os.PathLike = "<classes>") -> None:
    """A class (by name or MID) may appear once: twice, or in both splits, is an error."""
    by_name: dict[str, tuple[int, TargetClass]] = {}
    by_mid: dict[str, tuple[int, TargetClass]] = {}
    for lineno, cls in numbered:
        for key, table, fld in ((_norm(cls.name), by_name, "name"), (cls.mid, by_mid, "mid")):
            if key in table:
                first_line, first = table[key]
                what = ("listed in both splits" if first.split != cls.split else "listed twice")
                raise InputError(f"class {cls.name!r} ({cls.mid}) {what} (first on line {first_line}, "
                                 f"split {first.split!r}; here split {cls.split!r})",
                                 file=path, line=lineno, field=fld)
            table[key] = (lineno, cls)


def write_classes(classes: Iterable[TargetClass], path: str | os.PathLike) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CLASS_COLUMNS)
        for c in classes:
            writer.writerow([c.name, c.mid, c.display_name, c.split])


# --------------------------------------------------------------------------- resolution

def candidates_for(name: str, ontology: Ontology) -> list[str]:
    """MIDs whose display name (or one of its comma-separated aliases) matches ``name``.

    Exact display-name matches win over alias matches, so 'Guitar' is Guitar
    and not every entry that lists 'guitar' as an alias.
    """
    key = _norm(name)
    exact = [e.mid for e in ontology.entries.values() if _norm(e.name) == key]
    if exact:
        return exact
    return [e.mid for e in ontology.entries.values() if any(_norm(a) == key for a in _aliases(e.name)[1:])]


def resolve_name(name: str, split: str, ontology: Ontology, *, where: str = "<names>",
                 line: int | None = None) -> TargetClass:
    """One class name -> :class:`TargetClass`, or an error with suggestions / candidates."""
    mids = candidates_for(name, ontology)
    if len(mids) == 1:
        return TargetClass(name, mids[0], ontology.name(mids[0]), split)
    if not mids:
        names = sorted({a for e in ontology.entries.values() for a in _aliases(e.name)})
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InputError(f"unknown class {name!r}: not an AudioSet ontology name{hint}",
                         file=where, line=line, field="name")
    listing = "; ".join(f"{m} ({' > '.join(p)})" for m in mids for p in ontology.paths(m))
    raise InputError(f"ambiguous class {name!r}: matches {len(mids)} ontology entries: {listing}; "
                     "give the MID explicitly", file=where, line=line, field="name")


def check_against_ontology(classes: list[TargetClass], ontology: Ontology,
                           path: str | os.PathLike = "<classes>") -> list[TargetClass]:
    """Check each listed MID exists and its display name is the ontology's; names must resolve to it."""
    for lineno, cls in enumerate(classes, start=2):
        if cls.mid not in ontology:
            hint = resolve_hint(cls.name, ontology)
            raise InputError(f"unknown MID {cls.mid!r} for class {cls.name!r}{hint}", file=path, line=lineno,
                             field="mid")
        official = ontology.name(cls.mid)
        if cls.display_name != official:
            raise InputError(f"display_name {cls.display_name!r} differs from the ontology's {official!r} "
                             f"for {cls.mid}", file=path, line=lineno, field="display_name")
        if cls.mid not in candidates_for(cls.name, ontology) and _norm(cls.name) not in {
                _norm(a) for a in _aliases(official)} and not _loosely_same(cls.name, official):
            raise InputError(f"name {cls.name!r} does not match the ontology name {official!r} of {cls.mid}",
                             file=path, line=lineno, field="name")
    return classes


def _loosely_same(name: str, official: str) -> bool:
    return difflib.SequenceMatcher(None, _norm(name), _norm(official.split(",")[0])).ratio() >= 0.8


def resolve_hint(name: str, ontology: Ontology) -> str:
    try:
        found = resolve_name(name, "", ontology)
    except InputError:
        return ""
    return f" (the ontology has {name!r} as {found.mid})"


def classes_by_split(classes: Iterable[TargetClass]) -> dict[str, list[TargetClass]]:
    out: dict[str, list[TargetClass]] = {s: [] for s in CLASS_SPLITS}
    for c in classes:
        out[c.split].append(c)
    return out
