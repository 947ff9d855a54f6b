"""llinet-build curate: automatic filters + a human decision list -> the final, re-capped selection."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.audioset.classes import load_classes
from builder.cli.logs import echo
from builder.curate.decisions import DECISION_COLUMNS, read_decisions
from builder.curate.stage import ALL_FLAGS, CurateOptions, curate, summary_table
from builder.errors import InputError
from builder.io.atomic import atomic_write_json
from builder.manifest.media_root import MANIFEST as MANIFEST_NAME
from builder.manifest.schema import read_manifest, read_manifest_dir, write_manifest, write_manifest_dir

REPORT_FILE = "curate_report.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("curate", help="apply automatic filters and the accept/reject list; re-cap per class",
                       description="Flag clips from the earlier stages' results, apply the human decision list "
                                   f"(CSV: {','.join(DECISION_COLUMNS)}; 'time' optional), and re-select the "
                                   "first CAP usable clips per class by rank. Records curation, "
                                   "curation_reason, curation_reviewer, curation_time, curation_flags and "
                                   "curation_outcome per clip.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--manifest-dir", type=Path, metavar="DIR",
                        help="manifest folder (clips.csv + reserve.csv)")
    source.add_argument("--root", type=Path, metavar="ROOT",
                        help=f"media root: curate its {MANIFEST_NAME} (after trim/frames)")
    source.add_argument("--manifest", type=Path, metavar="CSV",
                        help="one manifest CSV with selection and reserve")
    p.add_argument("--out", type=Path, default=None, metavar="PATH",
                   help="where to write (a folder for --manifest-dir, a CSV otherwise); default: in place")
    p.add_argument("--decisions", type=Path, default=None, metavar="CSV", help="human decision list")
    p.add_argument("--latest-wins", action="store_true",
                   help="several rows for one clip: the last row in the file wins (default: an error)")
    p.add_argument("--cap", type=int, default=None, metavar="N",
                   help="clips per class (default: the cap of the selection before the first curate)")
    p.add_argument("--reject-flags", default=",".join(CurateOptions.reject_flags), metavar="LIST",
                   help=f"comma-separated flags that auto-reject, out of {','.join(ALL_FLAGS)} ('none' for none)")
    p.add_argument("--require-accept", action="store_true",
                   help="select only clips a reviewer accepted (for the final release)")
    p.add_argument("--classes", type=Path, default=None, metavar="CSV",
                   help="class list whose MIDs also count as targets for the 'ambiguous' flag")
    p.set_defaults(func=run)


def parse_flags(text: str) -> tuple[str, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    flags = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in flags if f not in ALL_FLAGS]
    if unknown:
        raise InputError(f"unknown flag(s) {unknown} in --reject-flags; known: {list(ALL_FLAGS)}")
    return flags


def run(args: argparse.Namespace) -> int:
    if args.manifest_dir is not None:
        if not args.manifest_dir.is_dir():
            raise InputError("not a manifest folder (expected clips.csv + reserve.csv)", file=args.manifest_dir)
        manifest = read_manifest_dir(args.manifest_dir)
    else:
        if args.manifest is None:
            args.manifest = args.root / MANIFEST_NAME
        manifest = read_manifest(args.manifest)
    target_mids = tuple(c.mid for c in load_classes(args.classes)) if args.classes else ()
    options = CurateOptions(cap=args.cap, reject_flags=parse_flags(args.reject_flags),
                            require_accept=args.require_accept, target_mids=target_mids)
    decisions = {}
    if args.decisions is not None:
        decisions = read_decisions(args.decisions, known_clips=manifest["clip_id"].astype(str),
                                   latest_wins=args.latest_wins)
    result, summary = curate(manifest, decisions, options, decisions_source=str(args.decisions))
    report = summary.to_dict()
    report["decisions_file"] = str(args.decisions) if args.decisions else None
    report["decisions"] = len(decisions)
    if args.manifest_dir is not None:
        out = args.out or args.manifest_dir
        write_manifest_dir(result, out)
        report_path = out / REPORT_FILE
    else:
        out = args.out or args.manifest
        write_manifest(result, out)
        report_path = out.parent / REPORT_FILE
    atomic_write_json(report_path, report)
    echo(summary_table(summary))
    short = summary.short_classes()
    if short:
        echo(f"\nshort of the cap ({summary.cap}): " + ", ".join(f"{k} -{v}" for k, v in short.items())
             + "\n  (fetch a margin, e.g. `fetch --cap N+30`, then trim/frames, to have spare candidates)")
    echo(f"\ncurate: {len(decisions)} decision(s), cap {summary.cap}; wrote {out} and {report_path}")
    return 0
