"""Published numbers on INSTRUMENT-32CLASS (unseen test classes), in percent, with their sources.

Sources (:data:`SOURCES`): Jia et al., "Look, Listen and Infer", ACM MM 2020 (Table 1 and the
recognition / localisation tables); the full retrieval table as published on the authors'
results page https://llinet.github.io/posts/results, which gives every Table 1 row. The two
disagree on one cell, CME's R@1(I2A): 25.7 on the results page, 35.7 in a transcription of the
paper's Table 1. Both are kept (:data:`TABLE1`), the cell is flagged, and the results page's value
is the one printed first (it is the only source of the whole table).

Column names are the paper's. The paper's "I2A" mAP is the official code's
``calc_mAP(image, audio)``, which ranks IMAGES with one AUDIO query per class
(audio→image in query→gallery naming); its R@1 columns follow the usual naming.
"""
from __future__ import annotations

from dataclasses import dataclass

# method: (mAP(I2A), R@1(I2A), mAP(A2I), R@1(A2I))
RETRIEVAL_TABLE1 = {
    "DAR": (13.3, 13.4, 13.6, 15.3),
    "ULSLVC": (13.4, 8.2, 20.1, 21.0),
    "SIR": (21.2, 20.9, 15.4, 12.8),
    "SCAN": (16.5, 16.7, 18.2, 15.0),
    "DSCMR": (14.8, 20.5, 18.1, 24.6),
    "TIMAM": (39.1, 28.5, 25.8, 25.0),
    "CMPM": (39.3, 28.9, 26.2, 25.8),
    "CME": (30.1, 25.7, 27.4, 30.8),
    "LLINet": (49.3, 41.1, 31.2, 38.3),
}

#: Which of our numbers sits in each paper column (direction, key).
RETRIEVAL_COLUMNS = (
    ("mAP(I2A)", ("audio_to_image", "map"),
     "official calc_mAP(image, audio): one AUDIO query per class ranks the images"),
    ("R@1(I2A)", ("image_to_audio", "r1"), "image queries, audio gallery"),
    ("mAP(A2I)", ("image_to_audio", "map"),
     "official calc_mAP(audio, image): one IMAGE query per class ranks the audio"),
    ("R@1(A2I)", ("audio_to_image", "r1"), "audio queries, image gallery"),
)

# Zero-shot recognition accuracy (%), and GZSL harmonic mean H where published.
RECOGNITION = {
    "DCN": {"zsl": 29.8, "gzsl_h": 33.7},
    "LDE": {"zsl": 51.7, "gzsl_h": 48.5},
    "Relation Net": {"zsl": 55.4, "gzsl_h": 48.0},
    "SAE": {"zsl": 57.7, "gzsl_h": 48.1},
    "LLINet": {"zsl": 56.7, "gzsl_seen": 68.6, "gzsl_unseen": 39.4, "gzsl_h": 50.1},
    "LLINet (VGGish audio encoder)": {"zsl": 62.2, "gzsl_h": 51.9},
}

# Sound localisation, LLINet 16x16 protocol (k picked on test in the official code).
LOCALIZATION = {
    "AVOL-Net": {"miou": 26.7, "auc": 27.1},
    "Baseline (no attention module)": {"miou": 24.1, "auc": 24.6},
    "Baseline + attention module (no attention loss)": {"miou": 32.3, "auc": 32.7},
    "LLINet": {"miou": 36.8, "auc": 37.1},
}

LEAKAGE_NOTE = (
    "ImageNet-1K contains the class \"French horn\", one of the 8 unseen test classes: "
    "image backbones pretrained on ImageNet (the paper's setting) have seen a test class, so "
    "image-side numbers for French horn are not strictly zero-shot."
)


#: Short keys of the sources, and what each is.
SOURCES = {
    "paper": "Jia, Wang, Pang, Zhu & Xue, Look, Listen and Infer, ACM MM 2020 (doi:10.1145/3394171.3414023)",
    "results page": "the authors' results page, https://llinet.github.io/posts/results",
    "transcription": "a transcription of the paper's Table 1 (CME's R@1(I2A) only; not checked against the paper "
                     "here)",
}


@dataclass(frozen=True)
class Published:
    """One published number (percent; None = not found in any source) and where it comes from."""

    value: float | None
    sources: tuple[str, ...]
    #: Other sources' different values for the same cell: ((value, source), ...).
    conflicts: tuple[tuple[float, str], ...] = ()


#: Table 1's row labels by method key (``llinet-train --method``), in the paper's order.
METHOD_LABELS = {"dar": "DAR", "ulslvc": "ULSLVC", "sir": "SIR", "scan": "SCAN", "dscmr": "DSCMR",
                 "timam": "TIMAM", "cmpm": "CMPM", "cme": "CME", "llinet": "LLINet"}
# Cells that the LLINet paper's own text also states: LLINet's row, the next best image-query
# numbers (CMPM) and audio-query numbers (CME); the results page gives every cell.
_ALSO_IN_PAPER = {("llinet", "mAP(I2A)"), ("llinet", "R@1(I2A)"), ("llinet", "mAP(A2I)"), ("llinet", "R@1(A2I)"),
                  ("cmpm", "mAP(I2A)"), ("cmpm", "R@1(I2A)"), ("cme", "mAP(A2I)"), ("cme", "R@1(A2I)")}
_CONFLICTS = {("cme", "R@1(I2A)"): ((35.7, "transcription"),)}


def _table1() -> dict[str, dict[str, Published]]:
    table = {}
    for key, label in METHOD_LABELS.items():
        row = {}
        for (column, _, _), value in zip(RETRIEVAL_COLUMNS, RETRIEVAL_TABLE1[label], strict=True):
            sources = ("paper", "results page") if (key, column) in _ALSO_IN_PAPER else ("results page",)
            row[column] = Published(value, sources, _CONFLICTS.get((key, column), ()))
        table[key] = row
    return table


#: Table 1 with sources, by method key (``llinet-train --method``); columns as :data:`RETRIEVAL_COLUMNS`.
TABLE1: dict[str, dict[str, Published]] = _table1()

#: Recognition (zero-shot accuracy; GZSL seen / unseen / H) and localisation, with sources.
RECOGNITION_SOURCES = ("paper",)
LOCALIZATION_SOURCES = ("paper", "results page")
