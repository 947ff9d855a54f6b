"""`select`: from AudioSet segment lists to a ranked clip manifest.

Label policy (each rule is counted in the report; a clip is counted under the
first rule it fails, in this order):

1. ``non_target``: carries none of the target classes' MIDs (not counted per class).
2. ``duplicate``: a YTID already seen in an earlier list (AudioSet has none; guarded anyway).
3. ``too_short``: segment shorter than ``min_duration`` (the later stages cut 3 s).
4. ``ambiguous``: matches two or more target classes. Dropped by default;
   ``keep-rarest`` / ``keep-first-listed`` keep it under one class instead.
5. ``leak``: assigned to a seen (train) class but carries a held-out class's MID
   or any ontology descendant of one. Enforced whatever the other options say.
6. Otherwise eligible. Per class, eligible clips are ranked by
   ``sha256(f"{seed}:{clip_id}")`` — independent of input order and machine — and
   the first ``cap`` are selected; the rest form the ranked reserve.
"""
from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from builder.audioset.classes import TargetClass
from builder.audioset.parse import Ontology, ParseStats, Segment, iter_segments
from builder.errors import InputError
from builder.manifest.ids import make_clip_id

AMBIGUOUS_POLICIES = ("drop", "keep-rarest", "keep-first-listed")
RULES = ("too_short", "ambiguous", "leak", "eligible")


@dataclass
class SelectOptions:
    cap: int = 150               # the paper's per-class cap (Jia et al. 2020)
    seed: int = 0
    include_descendants: bool = False
    ambiguous: str = "drop"
    min_duration: float = 3.0    # the trim stage cuts a 3 s window
    skip_bad_rows: bool = False
    # Reserve rows kept per class beyond the cap; None = 5 x cap (enough for ~20% link rot plus
    # heavy curation rejections while keeping the committed reserve small); -1 = all.
    reserve_limit: int | None = None

    def reserve_rows(self) -> int | None:
        if self.reserve_limit is None:
            return 5 * self.cap
        return None if self.reserve_limit < 0 else self.reserve_limit

    def __post_init__(self) -> None:
        if self.ambiguous not in AMBIGUOUS_POLICIES:
            raise InputError(f"ambiguous policy must be one of {AMBIGUOUS_POLICIES}, got {self.ambiguous!r}")
        if self.cap < 1:
            raise InputError(f"cap must be at least 1, got {self.cap}")


@dataclass
class SelectReport:
    options: dict
    inputs: dict = field(default_factory=dict)      # source -> {files, rows, skipped, skipped_examples}
    totals: dict = field(default_factory=dict)      # rule -> clips
    per_class: dict = field(default_factory=dict)   # class -> rule -> clips (+ selected, reserve)

    def to_dict(self) -> dict:
        return asdict(self)


def rank_key(clip_id: str, seed: int) -> str:
    """Stable, machine-independent ranking key."""
    return hashlib.sha256(f"{seed}:{clip_id}".encode()).hexdigest()


def match_sets(classes: list[TargetClass], ontology: Ontology, include_descendants: bool) -> dict[str, set[int]]:
    """MID -> indices of the classes a label with that MID counts for.

    With descendants, a class also answers to its ontology descendants, except
    those under another target class (Guitar does not swallow Electric guitar:
    such a clip matches Electric guitar, and Guitar only if labelled Guitar).
    """
    own = {c.mid for c in classes}
    table: dict[str, set[int]] = defaultdict(set)
    for i, cls in enumerate(classes):
        table[cls.mid].add(i)
        if include_descendants:
            blocked = set()
            for other in own - {cls.mid}:
                if other in ontology and other in ontology.descendants(cls.mid):
                    blocked |= ontology.closure([other])
            for mid in ontology.descendants(cls.mid) - blocked:
                table[mid].add(i)
    return dict(table)


def held_out_closure(classes: Iterable[TargetClass], ontology: Ontology) -> set[str]:
    """Every MID a clip of a seen class must not carry: held-out MIDs and their descendants."""
    return ontology.closure(c.mid for c in classes if c.mid in ontology) | {c.mid for c in classes}


def select_clips(classes: list[TargetClass], ontology: Ontology, sources: dict[str, list[Path]],
                 options: SelectOptions | None = None) -> tuple[pd.DataFrame, SelectReport]:
    """Stream the segment lists and return (manifest of selected + reserve clips, report)."""
    options = options or SelectOptions()
    if not classes:
        raise InputError("empty class list")
    known = frozenset(ontology.entries)
    mid_to_classes = match_sets(classes, ontology, options.include_descendants)
    forbidden_for_seen = held_out_closure([c for c in classes if c.split == "test"], ontology)
    report = SelectReport(options=asdict(options))
    totals: Counter = Counter()
    per_class: dict[str, Counter] = {c.name: Counter() for c in classes}
    seen_ytids: set[str] = set()
    single: list[tuple[int, str, Segment]] = []     # (class idx, source, segment)
    ambiguous: list[tuple[tuple[int, ...], str, Segment]] = []

    for source, files in sources.items():
        stats = ParseStats()
        for path in files:
            for seg in iter_segments(path, known_mids=known, skip_bad_rows=options.skip_bad_rows, stats=stats):
                hits = set()
                for label in seg.labels:
                    if label in mid_to_classes:
                        hits |= mid_to_classes[label]
                if not hits:
                    totals["non_target"] += 1
                    continue
                hit_names = [classes[i].name for i in sorted(hits)]
                if seg.ytid in seen_ytids:
                    _count(totals, per_class, hit_names, "duplicate")
                    continue
                seen_ytids.add(seg.ytid)
                if seg.end - seg.start < options.min_duration:
                    _count(totals, per_class, hit_names, "too_short")
                elif len(hits) > 1:
                    ambiguous.append((tuple(sorted(hits)), source, seg))
                else:
                    single.append((next(iter(hits)), source, seg))
        # File names, not paths: the report must be the same on every machine.
        report.inputs[source] = {"files": [p.name for p in files], "rows": stats.rows,
                                 "skipped_bad_rows": stats.skipped, "skipped_examples": stats.examples}

    kept = list(single)
    single_counts = Counter(i for i, _, _ in single)
    for candidates, source, seg in ambiguous:
        hit_names = [classes[i].name for i in candidates]
        if options.ambiguous == "drop":
            _count(totals, per_class, hit_names, "ambiguous")
            continue
        # keep-rarest: the class with the fewest unambiguous candidates; ties -> listed order.
        choice = (min(candidates, key=lambda i: (single_counts[i], i)) if options.ambiguous == "keep-rarest"
                  else min(candidates))
        totals["ambiguous_kept"] += 1
        per_class[classes[choice].name]["ambiguous_kept"] += 1
        kept.append((choice, source, seg))

    rows = []
    for i, source, seg in kept:
        cls = classes[i]
        if cls.split != "test" and forbidden_for_seen.intersection(seg.labels):
            _count(totals, per_class, [cls.name], "leak")
            continue
        clip_id = make_clip_id(seg.ytid, seg.start)
        rows.append({"clip_id": clip_id, "ytid": seg.ytid, "start": seg.start, "end": seg.end,
                     "class": cls.name, "mid": cls.mid, "split": "", "source": source,
                     "labels": ",".join(seg.labels), "_key": rank_key(clip_id, options.seed), "_order": i})
        _count(totals, per_class, [cls.name], "eligible")

    manifest = rank_and_cap(pd.DataFrame(rows, columns=list(_EMPTY_COLUMNS)), options.cap)
    limit = options.reserve_rows()
    if limit is not None:
        beyond = manifest["rank"] >= options.cap + limit
        for name, n in manifest.loc[beyond, "class"].value_counts().items():
            per_class[str(name)]["beyond_reserve"] = int(n)
        totals["beyond_reserve"] = int(beyond.sum())
        manifest = manifest[~beyond].reset_index(drop=True)
    for cls in classes:
        sub = manifest[manifest["class"] == cls.name]
        per_class[cls.name]["selected"] = int(sub["selected"].sum())
        per_class[cls.name]["reserve"] = int((~sub["selected"]).sum())
    report.totals = dict(sorted(totals.items()))
    report.totals["selected"] = int(manifest["selected"].sum())
    report.totals["reserve"] = int((~manifest["selected"]).sum())
    report.per_class = {name: dict(sorted(c.items())) for name, c in per_class.items()}
    return manifest, report


_EMPTY_COLUMNS = ("clip_id", "ytid", "start", "end", "class", "mid", "split", "source", "labels", "_key", "_order")


def _count(totals: Counter, per_class: dict[str, Counter], names: list[str], rule: str) -> None:
    totals[rule] += 1
    for name in names:
        per_class[name][rule] += 1


def rank_and_cap(rows: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Rank rows within their class by ``_key`` and select the first ``cap``.

    Output order: class-list order (``_order``), then rank — a pure function of
    the rows' content, never of their input order.
    """
    df = rows.sort_values(["_order", "_key"], kind="mergesort").reset_index(drop=True)
    df["rank"] = df.groupby("class", sort=False).cumcount().astype("int64")
    df["selected"] = df["rank"] < cap
    return df.drop(columns=["_key", "_order"])


def recap(manifest: pd.DataFrame, cap: int) -> pd.DataFrame:
    """Re-select the first ``cap`` rows of each class by existing ``rank`` (after rows were dropped)."""
    df = manifest.sort_values(["rank"], kind="mergesort")
    position = df.groupby("class", sort=False).cumcount()
    out = manifest.copy()
    out["selected"] = (position < cap).reindex(manifest.index)
    return out


def infer_cap(manifest: pd.DataFrame) -> int | None:
    """The cap a manifest was selected with: the selected count of any class that has a reserve."""
    with_reserve = ~manifest.groupby("class")["selected"].all()
    full = manifest[manifest["class"].isin(with_reserve[with_reserve].index) & manifest["selected"]]
    counts = full.groupby("class").size()
    return int(counts.max()) if len(counts) else None
