"""Fill to quota from the ranked reserve: the selection as a pure function.

Per class, candidates are walked in a fixed order -- the initially selected
clips by rank, then the reserve by rank -- and taken until the class reaches
its cap. A clip known to be unavailable (or that failed every attempt of this
run) is passed over; a clip not yet tried holds its place and is fetched
next. So the final selection depends only on (candidate order, availability),
never on timing, worker count or interruptions: a rerun after ``kill -9``
reaches the same selection as an uninterrupted run.

Replacements are paired in order: the k-th passed-over initially selected
clip is replaced by the k-th reserve clip taken.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

OK, GONE, FAILED = "ok", "gone", "failed"   # availability states; None = not yet known
INITIAL_COLUMN = "selected_before_fetch"


@dataclass
class ClassPlan:
    name: str
    cap: int
    order: list[str]                         # candidate clip ids in walk order
    primaries: set[str] = field(default_factory=set)


@dataclass
class Walk:
    chosen: list[str]                        # available and in the selection
    pending: list[str]                       # holding a place, availability unknown: fetch these
    passed: list[str]                        # passed over (gone / failed), in walk order
    replaced_by: dict[str, str]              # initially selected clip -> reserve clip taking its place


def parse_bool(value: object) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes"):
            return True
        if text in ("0", "false", "no", ""):
            return False
        raise ValueError(f"expected a boolean, got {value!r}")
    return bool(value)


def initial_selection(manifest: pd.DataFrame) -> pd.Series:
    """The selection before any fetch: ``selected_before_fetch`` if a fetch already ran, else ``selected``."""
    for column in (INITIAL_COLUMN, "selected"):
        if column in manifest.columns:
            return manifest[column].map(parse_bool).astype(bool)
    return pd.Series(True, index=manifest.index)


def build_plans(manifest: pd.DataFrame, *, cap: int | None = None, fill: bool = True) -> dict[str, ClassPlan]:
    initial = initial_selection(manifest)
    rank = (pd.to_numeric(manifest["rank"]) if "rank" in manifest.columns
            else pd.Series(range(len(manifest)), index=manifest.index))
    frame = pd.DataFrame({"clip_id": manifest["clip_id"].astype(str), "class": manifest["class"].astype(str),
                          "initial": initial.values, "rank": rank.values})
    plans: dict[str, ClassPlan] = {}
    for name, group in frame.groupby("class", sort=True):
        # Initially selected first, then reserve; by rank, ties by clip id (total order).
        group = group.sort_values(["initial", "rank", "clip_id"], ascending=[False, True, True], kind="mergesort")
        primaries = group.loc[group["initial"], "clip_id"].tolist()
        order = group["clip_id"].tolist() if fill else primaries
        plans[str(name)] = ClassPlan(str(name), len(primaries) if cap is None else int(cap), order, set(primaries))
    return plans


def walk(plan: ClassPlan, state_of) -> Walk:
    """Take candidates in order until ``cap`` clips are chosen or pending."""
    chosen: list[str] = []
    pending: list[str] = []
    passed: list[str] = []
    for clip_id in plan.order:
        if len(chosen) + len(pending) >= plan.cap:
            break
        state = state_of(clip_id)
        if state == OK:
            chosen.append(clip_id)
        elif state in (GONE, FAILED):
            passed.append(clip_id)
        else:
            pending.append(clip_id)
    taken_set, passed_set = set(chosen) | set(pending), set(passed)
    promoted = [c for c in plan.order if c in taken_set and c not in plan.primaries]
    dropped = [c for c in plan.order if c in plan.primaries and c in passed_set]
    replaced_by = dict(zip(dropped, promoted, strict=False))  # either list may be longer while the walk is unfinished
    return Walk(chosen, pending, passed, replaced_by)


def resolve(plans: dict[str, ClassPlan], state_of) -> dict[str, Walk]:
    return {name: walk(plan, state_of) for name, plan in plans.items()}


def pending_clips(walks: dict[str, Walk]) -> list[str]:
    return [clip_id for name in sorted(walks) for clip_id in walks[name].pending]
