"""llinet-build subset: write the metadata slice for a class list (what the offline demo ships)."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.audioset.classes import check_against_ontology, load_classes
from builder.audioset.parse import discover_segment_files, load_ontology
from builder.cli.logs import echo
from builder.commands.common import add_audioset_arg
from builder.selection.subset import write_subset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("subset", help="write the AudioSet rows that carry a class list's MIDs",
                       description="Keep every segment row carrying a listed class's MID or an ontology "
                                   "descendant of one; `select` on the slice equals `select` on the full lists.")
    p.add_argument("--classes", type=Path, required=True, metavar="CSV", help="class list CSV")
    add_audioset_arg(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="folder for the slice (ontology.json + segment CSVs; use it as --audioset)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ontology_path = args.audioset / "ontology.json"
    ontology = load_ontology(ontology_path)
    classes = check_against_ontology(load_classes(args.classes), ontology, args.classes)
    kept = write_subset(discover_segment_files(args.audioset), classes, ontology, ontology_path, args.out)
    echo(", ".join(f"{k}: {v} rows" for k, v in kept.items()) + f" -> {args.out}")
    return 0



