"""`split`: class-disjoint splits written into the manifest, and the leakage audit.

Presets:

* ``paper``: the class list's 24 train (seen) / 8 test (unseen) classes.
* ``gzsl``: additionally holds out ``num_val_classes`` train classes as
  ``val_unseen`` (for model selection and threshold tuning, never test), and
  marks a ``test_seen_fraction`` of the remaining train-class clips as
  ``test_seen`` (for generalised zero-shot evaluation) and a
  ``val_seen_fraction`` as ``val_seen`` (the seen side of validation, which
  GZSL calibration needs: Xian et al., TPAMI 2019, tune on held-out seen and
  unseen data). All choices are stable hashes of the seed, so they are
  deterministic and a clip keeps its split when other clips are replaced.

Leakage rule, between every pair of class groups that must stay apart: groups
are ordered by how long they stay hidden (seen = train + test_seen, then
val_unseen, then test). A clip may not carry the MID, or any ontology
descendant of the MID, of a class in a later group (a Bell clip labelled Chime
cannot stay in train when Chime is a validation class). Offending clips are
dropped and counted, each class is refilled from its reserve, and an audit
recomputes everything from the result.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict, dataclass

import pandas as pd

from builder.audioset.classes import TargetClass
from builder.audioset.parse import Ontology
from builder.errors import InputError, LlinetError
from builder.selection.select import held_out_closure, infer_cap, recap

PRESETS = ("paper", "gzsl")
# How long each split's classes stay hidden from training; a clip may not carry labels of a later level.
SPLIT_LEVEL = {"train": 0, "val_seen": 0, "test_seen": 0, "val_unseen": 1, "test": 2}


@dataclass
class SplitOptions:
    preset: str = "paper"
    seed: int = 0
    num_val_classes: int = 6        # a quarter of the 24 train classes
    val_classes: tuple[str, ...] | None = None
    test_seen_fraction: float = 0.2
    val_seen_fraction: float = 0.1
    cap: int | None = None          # None: infer from the manifest (see select.infer_cap)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"preset must be one of {PRESETS}, got {self.preset!r}")
        fractions = (self.test_seen_fraction, self.val_seen_fraction)
        if min(fractions) < 0.0 or sum(fractions) >= 1.0:
            raise InputError(f"test_seen_fraction and val_seen_fraction must be >= 0 with a sum < 1, got {fractions}")


def _unit_hash(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def class_splits(classes: list[TargetClass], options: SplitOptions) -> dict[str, str]:
    """Class name -> split of its clips' group (train, val_unseen or test)."""
    out = {c.name: c.split for c in classes}
    if options.preset == "gzsl":
        train = [c.name for c in classes if c.split == "train"]
        if options.val_classes is not None:
            unknown = [n for n in options.val_classes if n not in train]
            if unknown:
                raise InputError(f"validation classes {unknown} are not train classes of the class list")
            val = list(options.val_classes)
        else:
            if not 0 < options.num_val_classes < len(train):
                raise InputError(f"num_val_classes must be between 1 and {len(train) - 1}")
            val = sorted(train, key=lambda n: _unit_hash(options.seed, "val_unseen", n))[:options.num_val_classes]
        for name in val:
            out[name] = "val_unseen"
    return out


def forbidden_labels(group_of_class: dict[str, str], mids: dict[str, str], ontology: Ontology) -> dict[str, set[str]]:
    """Split -> MIDs its clips may not carry (held-out classes of later levels, with descendants)."""
    out = {}
    for split, level in SPLIT_LEVEL.items():
        later = [TargetClass(n, mids[n], "", "test") for n, g in group_of_class.items() if SPLIT_LEVEL[g] > level]
        out[split] = held_out_closure(later, ontology)
    return out


def split_manifest(manifest: pd.DataFrame, classes: list[TargetClass], ontology: Ontology,
                   options: SplitOptions | None = None) -> tuple[pd.DataFrame, dict]:
    """Assign splits, drop leaking clips, refill from the reserve; return (manifest, audit)."""
    options = options or SplitOptions()
    known = {c.name for c in classes}
    unknown = sorted(set(manifest["class"]) - known)
    if unknown:
        raise InputError(f"manifest has classes not in the class list: {unknown}")
    cap = options.cap if options.cap is not None else infer_cap(manifest)
    group = class_splits(classes, options)
    mids = {c.name: c.mid for c in classes}
    df = manifest.copy()
    splits = df["class"].map(group)
    if options.preset == "gzsl":
        u = df["clip_id"].map(lambda cid: _unit_hash(options.seed, "seen_holdout", cid))
        train = splits == "train"
        splits = splits.where(~(train & (u < options.test_seen_fraction)), "test_seen")
        held_for_val = (u >= options.test_seen_fraction) & (u < options.test_seen_fraction + options.val_seen_fraction)
        splits = splits.where(~(train & held_for_val), "val_seen")
    df["split"] = splits.astype(str)
    forbidden = forbidden_labels(group, mids, ontology)
    leaking = df.apply(lambda r: bool(forbidden[r["split"]].intersection(r["labels"].split(","))), axis=1) \
        if len(df) else pd.Series(dtype=bool)
    dropped = Counter(df.loc[leaking, "class"]) if len(df) else Counter()
    df = df[~leaking].copy() if len(df) else df
    if cap is not None:
        df = recap(df, cap)
    audit = audit_manifest(df, classes, ontology, group)
    audit["preset"] = options.preset
    audit["options"] = asdict(options)
    audit["cap"] = cap
    audit["dropped_for_leakage"] = dict(sorted(dropped.items()))
    if not audit["passed"]:
        raise LlinetError(f"split audit failed: {audit['problems']}")
    return df, audit


def audit_manifest(df: pd.DataFrame, classes: list[TargetClass], ontology: Ontology,
                   group: dict[str, str]) -> dict:
    """Recompute the zero-shot integrity checks from a split manifest.

    Must all be zero: classes in more than one class group, YouTube videos in
    more than one split, clips carrying a label a later-hidden group owns.
    """
    mids = {c.name: c.mid for c in classes}
    forbidden = forbidden_labels(group, mids, ontology)
    sel = df[df["selected"]]
    counts: dict[str, dict[str, int]] = {name: {} for name in mids}
    sizes = sel.groupby(["class", "split"]).size().reset_index(name="n")
    for name, split, n in sizes.itertuples(index=False):
        counts[name][split] = int(n)
    groups_per_class = df.assign(g=df["split"].map(lambda s: "seen" if SPLIT_LEVEL[s] == 0 else s)) \
        .groupby("class")["g"].nunique()
    mixed_classes = sorted(groups_per_class[groups_per_class > 1].index)
    shared = {}
    for name, frame in (("selected", sel), ("selected_and_reserve", df)):
        per_ytid = frame.groupby("ytid")["split"].nunique()
        shared[name] = sorted(per_ytid[per_ytid > 1].index)
    leaks = sorted(df.loc[[bool(forbidden[s].intersection(labels.split(",")))
                           for s, labels in zip(df["split"], df["labels"], strict=True)], "clip_id"]) if len(df) else []
    problems = {}
    if mixed_classes:
        problems["classes_in_several_groups"] = mixed_classes
    if shared["selected_and_reserve"]:
        problems["ytids_shared_across_splits"] = shared["selected_and_reserve"][:20]
    if leaks:
        problems["clips_with_labels_of_held_out_classes"] = leaks[:20]
    per_split = sel.groupby("split").agg(classes=("class", "nunique"), clips=("clip_id", "size"))
    return {
        "passed": not problems,
        "problems": problems,
        "class_groups": dict(sorted(group.items())),
        "per_split": {s: {k: int(v) for k, v in row.items()} for s, row in per_split.iterrows()},
        "per_class": counts,
        "reserve_per_class": {k: int(v) for k, v in df[~df["selected"]].groupby("class").size().items()},
        "ytids_shared_across_splits": {k: len(v) for k, v in shared.items()},
        "clips_with_labels_of_held_out_classes": len(leaks),
        "classes_in_several_groups": len(mixed_classes),
    }
