"""llinet-build select: AudioSet segment lists -> ranked clip manifest (selection + reserve)."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.audioset.classes import check_against_ontology, load_classes
from builder.audioset.parse import SOURCE_FILES, discover_segment_files, load_ontology
from builder.cli.args import add_option
from builder.cli.logs import echo
from builder.commands.common import add_audioset_arg, format_table
from builder.io.atomic import atomic_write_json
from builder.manifest.schema import write_manifest_dir
from builder.selection.select import AMBIGUOUS_POLICIES, RULES, SelectOptions, SelectReport, select_clips

REPORT_FILE = "select_report.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="select clips per class from the segment lists",
                       description="Stream AudioSet segment lists and write DIR/clips.csv (selection), "
                                   f"DIR/reserve.csv (ranked reserve) and DIR/{REPORT_FILE} "
                                   "(DIR: --manifest-dir).")
    p.add_argument("--classes", type=Path, required=True, help="class list CSV (see `resolve`)")
    add_audioset_arg(p)
    add_option(p, "--manifest-dir", deprecated=["--out"], type=Path, required=True, metavar="DIR",
               help="manifest folder to write")
    p.add_argument("--sources", nargs="+", default=list(SOURCE_FILES), choices=list(SOURCE_FILES), metavar="NAME",
                   help=f"segment lists to read, out of {', '.join(SOURCE_FILES)}")
    d = SelectOptions
    p.add_argument("--cap", type=int, default=d.cap, metavar="N", help="clips per class (the paper's cap: 150)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the ranking hash")
    p.add_argument("--include-descendants", action="store_true",
                   help="a class also matches its ontology descendants (except those under another target class)")
    p.add_argument("--ambiguous", choices=AMBIGUOUS_POLICIES, default=d.ambiguous,
                   help="clips with two or more target classes: drop, or keep under one class")
    p.add_argument("--min-duration", type=float, default=d.min_duration, metavar="S",
                   help="drop shorter segments (seconds)")
    p.add_argument("--reserve-limit", type=int, default=d.reserve_limit, metavar="N",
                   help="reserve clips kept per class beyond the cap (default 5 x cap; -1 keeps all)")
    p.add_argument("--skip-bad-rows", action="store_true", help="count and skip malformed rows instead of failing")
    p.set_defaults(func=run)


def print_report(report: SelectReport) -> None:
    cols = ["too_short", "ambiguous", "ambiguous_kept", "leak", "eligible", "selected", "reserve", "beyond_reserve"]
    rows = [[name] + [c.get(k, 0) for k in cols] for name, c in report.per_class.items()]
    echo(format_table(["class"] + cols, rows))
    totals = report.totals
    echo("\ntotals (each clip once): " + ", ".join(f"{k}={v}" for k, v in totals.items()))
    for source, info in report.inputs.items():
        skipped = f", {info['skipped_bad_rows']} bad rows skipped" if info["skipped_bad_rows"] else ""
        echo(f"  {source}: {info['rows']} rows from {len(info['files'])} file(s){skipped}")
        for example in info["skipped_examples"][:5]:
            echo(f"    skipped: {example}")


def run(args: argparse.Namespace) -> int:
    ontology = load_ontology(args.audioset / "ontology.json")
    classes = check_against_ontology(load_classes(args.classes), ontology, args.classes)
    sources = discover_segment_files(args.audioset, args.sources)
    options = SelectOptions(cap=args.cap, seed=args.seed, include_descendants=args.include_descendants,
                            ambiguous=args.ambiguous, min_duration=args.min_duration,
                            skip_bad_rows=args.skip_bad_rows, reserve_limit=args.reserve_limit)
    manifest, report = select_clips(classes, ontology, sources, options)
    write_manifest_dir(manifest, args.manifest_dir)
    atomic_write_json(args.manifest_dir / REPORT_FILE, report.to_dict())
    print_report(report)
    echo(f"\nwrote {args.manifest_dir}/clips.csv ({report.totals['selected']} clips), "
         f"reserve.csv ({report.totals['reserve']}), {REPORT_FILE}")
    return 0


__all__ = ["register", "run", "RULES"]
