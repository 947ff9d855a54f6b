"""llinet-build resolve: check a class list (CSV or names) against the AudioSet ontology."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.audioset.classes import check_against_ontology, check_unique, load_classes, resolve_name, write_classes
from builder.audioset.parse import load_ontology
from builder.cli.logs import echo
from builder.commands.common import add_audioset_arg, format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("resolve", help="check a class list against the ontology",
                       description="Resolve class names (or a classes CSV) to AudioSet MIDs. Unknown names fail "
                                   "with close matches; ambiguous names list the candidate MIDs and ontology paths; "
                                   "a class listed twice or in both splits fails.")
    p.add_argument("classes", nargs="*", help="a classes CSV (name,mid,display_name,split), or class names")
    p.add_argument("--train", nargs="*", default=[], metavar="NAME", help="seen-class names")
    p.add_argument("--test", nargs="*", default=[], metavar="NAME", help="unseen-class names")
    add_audioset_arg(p)
    p.add_argument("--out", type=Path, metavar="CSV", help="write the resolved class list CSV here")
    p.set_defaults(func=run)


def resolve_args(args: argparse.Namespace):
    ontology = load_ontology(args.audioset / "ontology.json")
    if len(args.classes) == 1 and args.classes[0].endswith(".csv"):
        path = Path(args.classes[0])
        return check_against_ontology(load_classes(path), ontology, path), ontology
    named = [(n, "train") for n in list(args.classes) + list(args.train)] + [(n, "test") for n in args.test]
    resolved = [(i + 1, resolve_name(n, s, ontology, where="<command line>", line=None))
                for i, (n, s) in enumerate(named)]
    check_unique(resolved, "<command line>")
    return [c for _, c in resolved], ontology


def run(args: argparse.Namespace) -> int:
    classes, ontology = resolve_args(args)
    rows = [[c.name, c.mid, c.display_name, c.split, " > ".join(ontology.paths(c.mid)[0])] for c in classes]
    echo(format_table(["name", "mid", "display_name", "split", "ontology path"], rows))
    counts = {s: sum(c.split == s for c in classes) for s in ("train", "test")}
    echo(f"\n{len(classes)} classes resolved: {counts['train']} train, {counts['test']} test")
    if args.out:
        write_classes(classes, args.out)
        echo(f"wrote {args.out}")
    return 0
