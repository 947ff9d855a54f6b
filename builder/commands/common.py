"""Small helpers shared by the command wrappers."""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from builder.resources import bundled_audioset, committed_manifests

BUNDLED_AUDIOSET = bundled_audioset()
INSTRUMENT32 = committed_manifests()


def add_audioset_arg(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--audioset", type=Path, required=required, metavar="DIR",
                        help="AudioSet metadata folder (ontology.json + segment CSVs, as written by "
                             f"`llinet-build metadata`); the offline demo slice is {BUNDLED_AUDIOSET}")


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
