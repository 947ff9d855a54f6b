"""`curate`: automatic filters + the human decision list -> the final, re-capped selection.

``curate(manifest, decisions, options) -> (manifest, summary)``. Per clip:

1. **Flags** (column ``curation_flags``, every flag seen, whether it rejects or not):
   ``unavailable`` / ``failed`` (fetch_status), ``trim_error``, ``too_short`` /
   ``silent`` (trim_flags), ``frames_error``, ``dark`` / ``uniform``
   (frame_flags), ``ambiguous`` (the ``labels`` carry two or more target-class
   MIDs: clips select kept with ``--ambiguous keep-*``).
2. **Decision** (column ``curation``): a human decision in the list wins
   (``accepted`` / ``rejected``; the reviewer saw the clip, so an accept
   overrides e.g. ``dark``); otherwise a flag in ``options.reject_flags`` gives
   ``auto_rejected``; otherwise ``undecided``. ``curation_reason`` holds the
   reviewer's reason or ``auto: <flags>``; ``curation_reviewer`` /
   ``curation_time`` come from the list.
3. **Ready**: a clip can only be selected if every media stage that ran on the
   manifest succeeded for it (``fetch_status``/``trim_status``/``frames_status``
   equal ``ok`` where those columns exist; with none of them, every clip is
   ready -- curation on metadata alone). An accept cannot conjure missing media.
4. **Re-cap**: per class, clips in ``rank`` order; rejected, not-ready (and,
   with ``require_accept``, undecided) clips are passed over; the first ``cap``
   others are selected. A pure function of (rank, decisions, flags, media
   status): the same inputs give the same selection whatever the row order or
   the previous ``selected``. ``cap`` defaults to the cap inferred from the
   selection before the first curate (``selected_before_curate``, kept so a
   rerun with new decisions starts from the same pool).

``curation_outcome`` says why each clip is in or out: ``selected``,
``rejected``, ``no_media``, ``needs_review`` (undecided under
``require_accept``) or ``beyond_cap``. To have spare candidates for
rejections, fetch a margin (``fetch --cap 180``, then trim/frames) and curate
with ``--cap 150``.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import pandas as pd

from builder.curate.decisions import Decision
from builder.errors import InputError
from builder.fetch.quota import parse_bool
from builder.selection.select import infer_cap

ALL_FLAGS = ("unavailable", "failed", "trim_error", "too_short", "silent", "frames_error", "dark", "uniform",
             "ambiguous")
DEFAULT_REJECT_FLAGS = ALL_FLAGS
CURATIONS = ("accepted", "rejected", "auto_rejected", "undecided")
OUTCOMES = ("selected", "rejected", "no_media", "needs_review", "beyond_cap")
BEFORE_COLUMN = "selected_before_curate"
STAGE_STATUS_COLUMNS = ("fetch_status", "trim_status", "frames_status")
CURATION_COLUMNS = ("curation", "curation_reason", "curation_reviewer", "curation_time", "curation_flags",
                    "curation_outcome", BEFORE_COLUMN)


@dataclass(frozen=True)
class CurateOptions:
    cap: int | None = None                          # None: inferred from the pre-curation selection
    reject_flags: tuple[str, ...] = DEFAULT_REJECT_FLAGS
    require_accept: bool = False                    # only human-accepted clips may be selected
    target_mids: tuple[str, ...] = ()               # extra target MIDs for `ambiguous` (besides the manifest's)

    def __post_init__(self) -> None:
        unknown = [f for f in self.reject_flags if f not in ALL_FLAGS]
        if unknown:
            raise InputError(f"unknown reject flag(s) {unknown}; known: {list(ALL_FLAGS)}")
        if self.cap is not None and self.cap < 1:
            raise InputError(f"cap must be at least 1, got {self.cap}")


@dataclass
class CurateSummary:
    cap: int
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)        # flag -> clips carrying it
    options: dict = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        out: Counter = Counter()
        for row in self.per_class.values():
            out.update(row)
        return dict(out)

    def short_classes(self) -> dict[str, int]:
        return {name: row["short"] for name, row in self.per_class.items() if row["short"]}

    def to_dict(self) -> dict:
        return {**asdict(self), "totals": self.totals()}


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _split_flags(value: object) -> list[str]:
    return [f.strip() for f in _text(value).split(",") if f.strip()]


def clip_flags(row: dict, target_mids: frozenset[str]) -> list[str]:
    """The automatic flags of one manifest row (a dict of column -> value), in ALL_FLAGS order."""
    found: set[str] = set()
    fetch_status = _text(row.get("fetch_status"))
    if fetch_status in ("unavailable", "failed"):
        found.add(fetch_status)
    if _text(row.get("trim_status")) == "error":
        found.add("trim_error")
    if _text(row.get("frames_status")) == "error":
        found.add("frames_error")
    found.update(f for f in _split_flags(row.get("trim_flags")) if f in ("too_short", "silent"))
    found.update(f for f in _split_flags(row.get("frame_flags")) if f in ("dark", "uniform"))
    labels = set(_split_flags(row.get("labels")))
    if len(labels & target_mids) >= 2:
        found.add("ambiguous")
    return [f for f in ALL_FLAGS if f in found]


def is_ready(row: dict, status_columns: Iterable[str]) -> bool:
    return all(_text(row.get(column)) == "ok" for column in status_columns)


def initial_selection(manifest: pd.DataFrame) -> pd.Series:
    """The selection before any curate run (so reruns start from the same pool)."""
    column = BEFORE_COLUMN if BEFORE_COLUMN in manifest.columns else "selected"
    if column not in manifest.columns:
        raise InputError("manifest has no 'selected' column", field="selected")
    return manifest[column].map(parse_bool).astype(bool)


def resolve_cap(manifest: pd.DataFrame, before: pd.Series, cap: int | None) -> int:
    if cap is not None:
        return cap
    inferred = infer_cap(manifest.assign(selected=before.values))
    if inferred is None:  # no class has a reserve: the largest class selection is the cap
        counts = manifest.loc[before.to_numpy(dtype=bool), "class"].value_counts()
        inferred = int(counts.max()) if len(counts) else 1
    return inferred


def curate(manifest: pd.DataFrame, decisions: dict[str, Decision], options: CurateOptions | None = None, *,
           decisions_source: str = "<decisions>") -> tuple[pd.DataFrame, CurateSummary]:
    """The curate stage (see the module doc); ``decisions`` = clip_id -> Decision (from read_decisions)."""
    options = options or CurateOptions()
    for column in ("clip_id", "class", "rank"):
        if column not in manifest.columns:
            raise InputError(f"manifest has no {column!r} column", field=column)
    known = set(manifest["clip_id"].astype(str))
    unknown = sorted(set(decisions) - known)
    if unknown:
        first = decisions[unknown[0]]
        raise InputError(f"unknown clip {unknown[0]!r}: not in the manifest ({len(unknown)} unknown in all)",
                         file=decisions_source, line=first.line or None, field="clip_id")
    before = initial_selection(manifest)
    cap = resolve_cap(manifest, before, options.cap)
    manifest_mids = manifest["mid"].tolist() if "mid" in manifest.columns else []
    target_mids = frozenset(_text(m) for m in manifest_mids if _text(m)) | frozenset(options.target_mids)
    status_columns = [c for c in STAGE_STATUS_COLUMNS if c in manifest.columns]
    reject = set(options.reject_flags)

    records = manifest.to_dict("records")
    curation, reason, reviewer, when, flags_col, ready = [], [], [], [], [], []
    flag_counts: Counter = Counter()
    for row in records:
        flags = clip_flags(row, target_mids)
        flag_counts.update(flags)
        decision = decisions.get(str(row["clip_id"]))
        rejecting = [f for f in flags if f in reject]
        if decision is not None:
            curation.append("accepted" if decision.decision == "accept" else "rejected")
            reason.append(decision.reason)
            reviewer.append(decision.reviewer)
            when.append(decision.time)
        elif rejecting:
            curation.append("auto_rejected")
            reason.append("auto: " + ",".join(rejecting))
            reviewer.append("")
            when.append("")
        else:
            curation.append("undecided")
            reason.append("")
            reviewer.append("")
            when.append("")
        flags_col.append(",".join(flags))
        ready.append(is_ready(row, status_columns))

    out = manifest.copy()
    out["curation"] = curation
    out["curation_reason"] = reason
    out["curation_reviewer"] = reviewer
    out["curation_time"] = when
    out["curation_flags"] = flags_col
    out[BEFORE_COLUMN] = before.values
    outcome = _recap(out, pd.Series(ready, index=out.index), cap, options.require_accept)
    out["curation_outcome"] = outcome
    out["selected"] = (outcome == "selected").astype(bool)
    summary = _summarize(out, before, cap, flag_counts, options)
    return out, summary


def _recap(df: pd.DataFrame, ready: pd.Series, cap: int, require_accept: bool) -> pd.Series:
    """Outcome per row: walk each class in (rank, clip_id) order and take the first ``cap`` usable clips."""
    rank = pd.to_numeric(df["rank"], errors="raise")
    order = pd.DataFrame({"class": df["class"].astype(str).values, "rank": rank.values,
                          "clip_id": df["clip_id"].astype(str).values}
                         ).sort_values(["class", "rank", "clip_id"], kind="mergesort")
    curation, ready_list = df["curation"].tolist(), ready.tolist()
    outcome = [""] * len(df)
    taken: Counter = Counter()
    for position, cls in zip(order.index.tolist(), order["class"].tolist(), strict=True):
        state = curation[position]
        if state in ("rejected", "auto_rejected"):
            outcome[position] = "rejected"
        elif not ready_list[position]:
            outcome[position] = "no_media"
        elif require_accept and state != "accepted":
            outcome[position] = "needs_review"
        elif taken[cls] < cap:
            taken[cls] += 1
            outcome[position] = "selected"
        else:
            outcome[position] = "beyond_cap"
    return pd.Series(outcome, index=df.index, dtype=object)


def _summarize(df: pd.DataFrame, before: pd.Series, cap: int, flag_counts: Counter,
               options: CurateOptions) -> CurateSummary:
    summary = CurateSummary(cap=cap, flags={f: flag_counts[f] for f in ALL_FLAGS if flag_counts[f]},
                            options={**asdict(options), "reject_flags": list(options.reject_flags),
                                     "target_mids": list(options.target_mids)})
    selected = df["selected"].astype(bool)
    for name, group in df.groupby("class", sort=True):
        sel = selected[group.index]
        was = before[group.index].astype(bool)
        row = {"before": int(was.sum()), "selected": int(sel.sum()),
               "promoted": int((sel & ~was).sum()), "dropped": int((~sel & was).sum())}
        for state in CURATIONS:
            row[state] = int((group["curation"] == state).sum())
        for state in ("no_media", "needs_review"):
            row[state] = int((group["curation_outcome"] == state).sum())
        row["short"] = max(0, cap - row["selected"])
        summary.per_class[str(name)] = row
    return summary


def summary_table(summary: CurateSummary) -> str:
    """Per-class table for the terminal."""
    cols = ("before", "selected", "promoted", "dropped", "accepted", "rejected", "auto_rejected", "undecided",
            "no_media", "needs_review", "short")
    width = max([5] + [len(n) for n in summary.per_class])
    lines = [f"{'class':<{width}} " + " ".join(f"{c:>13}" for c in cols)]
    for name, row in list(summary.per_class.items()) + [("TOTAL", summary.totals())]:
        lines.append(f"{name:<{width}} " + " ".join(f"{row.get(c, 0):>13}" for c in cols))
    return "\n".join(lines)
