"""Chance levels of the reported metrics, from a split's class sizes alone.

A model that ranks the gallery uniformly at random, or assigns classes uniformly at random,
scores these in expectation; the reports print them beside every number so that a result on a
small demo set (3 classes: R@1 chance 33%) is not read like one on INSTRUMENT-32CLASS (8 classes).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: The unseen test classes of INSTRUMENT-32CLASS, on which the published numbers were measured.
INSTRUMENT32_TEST_CLASSES = frozenset({"Didgeridoo", "Double bass", "Electric guitar", "French horn",
                                       "Glockenspiel", "Shofar", "Steel guitar", "Tabla"})


def expected_random_ap(relevant: int, gallery: int) -> float:
    """E[AP] of a uniformly random ranking of ``gallery`` items of which ``relevant`` are relevant.

    Rank i holds a relevant item with probability n/N, and then the precision there is
    (1 + (i-1)(n-1)/(N-1)) / i, so E[AP] = (1/N) [H_N + (n-1)/(N-1) (N - H_N)], H_N = Σ_{i<=N} 1/i.
    """
    if not 1 <= relevant <= gallery:
        raise ValueError(f"need 1 <= relevant <= gallery, got {relevant}, {gallery}")
    harmonic = sum(1.0 / i for i in range(1, gallery + 1))
    if gallery == 1:
        return 1.0
    return (harmonic + (relevant - 1) / (gallery - 1) * (gallery - harmonic)) / gallery


def chance_levels(clips_per_class: Mapping[str, int]) -> dict[str, float]:
    """Fractions in [0, 1] for a split whose image and audio galleries both hold ``clips_per_class``.

    ``map``: the LLINet and macro mAP (mean over classes of E[AP] with n_c relevant of N);
    ``r1``: R@1 over every query, Σ_c (n_c/N)²; ``recognition``: 1/C (uniform class guesses, over
    samples and per class alike).
    """
    counts = [int(n) for n in clips_per_class.values() if int(n) > 0]
    if not counts:
        raise ValueError("no clips")
    total = sum(counts)
    return {"map": sum(expected_random_ap(n, total) for n in counts) / len(counts),
            "r1": sum((n / total) ** 2 for n in counts),
            "recognition": 1.0 / len(counts)}


def recall_at_k(relevant: int, gallery: int, k: int) -> float:
    """P(a uniformly random ranking has a relevant item in its top k) = 1 - C(N-n, k) / C(N, k)."""
    if k >= gallery:
        return 1.0
    return 1.0 - math.comb(gallery - relevant, k) / math.comb(gallery, k)


def standard_chance(clips_per_class: Mapping[str, int], ks: Iterable[int] = (1, 5, 10)) -> dict[str, float]:
    """Chance of the standard protocol (every clip a query): macro / micro mAP and R@K."""
    counts = [int(n) for n in clips_per_class.values() if int(n) > 0]
    total = sum(counts)
    out = {"map_macro": sum(expected_random_ap(n, total) for n in counts) / len(counts),
           "map_micro": sum(n * expected_random_ap(n, total) for n in counts) / total}
    for k in ks:
        out[f"r{k}"] = sum(n * recall_at_k(n, total, k) for n in counts) / total
    return out


def per_class_chance(clips_per_class: Mapping[str, int]) -> dict[str, dict[str, float]]:
    """Per class: chance AP (n_c relevant of N) and recognition accuracy (1/C)."""
    total = sum(int(n) for n in clips_per_class.values())
    classes = len(clips_per_class)
    return {c: {"ap": expected_random_ap(int(n), total), "recognition": 1.0 / classes}
            for c, n in clips_per_class.items()}


def is_instrument32(classes: Iterable[str]) -> bool:
    """True when the evaluated classes are exactly INSTRUMENT-32CLASS's 8 unseen test classes."""
    return {str(c) for c in classes} == INSTRUMENT32_TEST_CLASSES


def data_banner(clips_per_class: Mapping[str, int]) -> list[str]:
    """Markdown lines warning that the published numbers are not comparable; [] on INSTRUMENT-32's test set."""
    if is_instrument32(clips_per_class):
        return []
    names = ", ".join(sorted(clips_per_class))
    levels = chance_levels(clips_per_class)
    count = len(clips_per_class)
    return [f"> **Not INSTRUMENT-32CLASS.** This split has {count} class{'' if count == 1 else 'es'} ({names}; "
            f"{sum(clips_per_class.values())} clips), not the dataset's 8 unseen test classes the published numbers "
            f"were measured on. Published numbers are shown for reference only and are not comparable; read "
            f"ours against chance here (R@1 {100 * levels['r1']:.1f}%, mAP {100 * levels['map']:.1f}%, "
            f"recognition {100 * levels['recognition']:.1f}%).", ""]
