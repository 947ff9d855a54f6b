"""llinet-build split: class-disjoint splits + leakage audit over a manifest folder."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.audioset.classes import check_against_ontology, load_classes
from builder.audioset.parse import load_ontology
from builder.cli.logs import echo
from builder.commands.common import add_audioset_arg, format_table
from builder.io.atomic import atomic_write_json
from builder.manifest.schema import read_manifest_dir, write_manifest_dir
from builder.selection.split import PRESETS, SplitOptions, split_manifest

AUDIT_FILE = "audit.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="write class-disjoint splits and the leakage audit",
                       description="Assign splits to DIR/clips.csv + reserve.csv (DIR: --manifest-dir), drop clips "
                                   "whose labels touch a held-out class group, refill from the reserve, and write "
                                   f"{AUDIT_FILE}.")
    p.add_argument("--manifest-dir", type=Path, required=True, metavar="DIR",
                   help="manifest folder written by `select`")
    p.add_argument("--classes", type=Path, required=True, metavar="CSV", help="class list CSV")
    add_audioset_arg(p)
    d = SplitOptions
    p.add_argument("--preset", choices=PRESETS, default=d.preset, help="paper (the published splits) or gzsl")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the gzsl draws")
    p.add_argument("--num-val-classes", type=int, default=d.num_val_classes, metavar="N",
                   help="gzsl: train classes held out for validation")
    p.add_argument("--val-classes", nargs="+", metavar="NAME", help="gzsl: explicit validation classes")
    p.add_argument("--test-seen-fraction", type=float, default=d.test_seen_fraction, metavar="F",
                   help="gzsl: share of train-class clips for GZSL test")
    p.add_argument("--val-seen-fraction", type=float, default=d.val_seen_fraction, metavar="F",
                   help="gzsl: share of train-class clips held out as seen-class validation (GZSL calibration)")
    p.add_argument("--cap", type=int, default=d.cap, metavar="N",
                   help="clips per class (default: the cap the selection was made with)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write here instead of in place")
    p.set_defaults(func=run)


def print_audit(audit: dict) -> None:
    splits = sorted({s for c in audit["per_class"].values() for s in c})
    rows = [[name, audit["class_groups"][name], *(c.get(s, 0) for s in splits), audit["reserve_per_class"].get(name, 0)]
            for name, c in audit["per_class"].items()]
    echo(format_table(["class", "group"] + splits + ["reserve"], rows))
    echo("\n" + ", ".join(f"{s}: {v['classes']} classes / {v['clips']} clips" for s, v in audit["per_split"].items()))
    echo(f"YTIDs shared across splits: {audit['ytids_shared_across_splits']['selected_and_reserve']}; "
         f"clips with labels of held-out classes: {audit['clips_with_labels_of_held_out_classes']}; "
         f"classes in several groups: {audit['classes_in_several_groups']}; "
         f"dropped for leakage: {sum(audit['dropped_for_leakage'].values())}")
    echo("audit: " + ("PASSED" if audit["passed"] else f"FAILED {audit['problems']}"))


def run(args: argparse.Namespace) -> int:
    ontology = load_ontology(args.audioset / "ontology.json")
    classes = check_against_ontology(load_classes(args.classes), ontology, args.classes)
    manifest = read_manifest_dir(args.manifest_dir)
    options = SplitOptions(preset=args.preset, seed=args.seed, num_val_classes=args.num_val_classes,
                           val_classes=tuple(args.val_classes) if args.val_classes else None,
                           test_seen_fraction=args.test_seen_fraction,
                           val_seen_fraction=args.val_seen_fraction, cap=args.cap)
    manifest, audit = split_manifest(manifest, classes, ontology, options)
    out = args.out or args.manifest_dir
    write_manifest_dir(manifest, out)
    atomic_write_json(Path(out) / AUDIT_FILE, audit)
    print_audit(audit)
    echo(f"\nwrote {out}/clips.csv, reserve.csv, {AUDIT_FILE}")
    return 0
