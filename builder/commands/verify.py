"""llinet-build verify: compare a rebuilt copy with a release, clip by clip and file by file.

--root may be a media root, a media-X.Y.Z.tar, or an export (official layout,
WebDataset, Hugging Face). Besides the content, each file's format is checked
against the release (sample rate, channels, samples, codec, container; image
format and size) and a file a decoder complains about counts as corrupt.

Exit status 0 when every released clip is identical or equivalent (same
format, content within the thresholds), 1 when any is different or missing
(beyond --max-missing), 2 on bad input or a folder that is none of the above.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.args import RawDescriptionHelpFormatter, add_renamed_positional, show_progress
from builder.cli.logs import echo
from builder.commands.common import format_table
from builder.release.fingerprint import THRESHOLDS
from builder.release.verify import STATUSES, VerifyOptions, verify, write_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check a rebuild against a release (identical/equivalent/different/missing)",
                       description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    release = p.add_argument("--release", type=Path, required=True, metavar="DIR",
                             help="release folder (with SHA256SUMS)")
    root = p.add_argument("--root", type=Path, required=True, metavar="PATH",
                          help="the rebuild: its media root, a media-X.Y.Z.tar, or an export of it (official "
                               "layout, WebDataset, Hugging Face)")
    add_renamed_positional(p, release, "RELEASE", type=Path)
    add_renamed_positional(p, root, "DATA", type=Path)
    p.add_argument("--report", type=Path, default=None, metavar="JSON",
                   help="write the per-clip JSON report (every finding) here; none is written without it")
    p.add_argument("--extract-to", type=Path, default=VerifyOptions.extract_to, metavar="DIR",
                   help="where to extract a tarball given as --root (default: a temporary folder, removed "
                        "afterwards)")
    p.add_argument("--audio-threshold", type=float, default=THRESHOLDS["audio_correlation"], metavar="R",
                   help="min log-mel time-course correlation")
    p.add_argument("--duration-tolerance", type=float, default=THRESHOLDS["audio_duration"], metavar="S",
                   help="max audio duration difference in seconds")
    p.add_argument("--frame-threshold", type=float, default=THRESHOLDS["frame_correlation"], metavar="R",
                   help="min 32x32 grey-frame correlation")
    p.add_argument("--frame-mad", type=float, default=THRESHOLDS["frame_mad"], metavar="L",
                   help="max 32x32 grey-frame mean abs difference, 0-255")
    p.add_argument("--max-missing", type=float, default=VerifyOptions.max_missing, metavar="FRACTION",
                   help="fraction of released clips allowed to be missing (link rot)")
    p.add_argument("--workers", type=int, default=VerifyOptions.workers, metavar="N",
                   help="clips compared at once (threads)")
    p.add_argument("--show", type=int, default=20, metavar="N", help="list up to N failing clips")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    thresholds = {"audio_correlation": args.audio_threshold, "audio_duration": args.duration_tolerance,
                  "frame_correlation": args.frame_threshold, "frame_mad": args.frame_mad}
    options = VerifyOptions(release=args.release, data=args.root, thresholds=thresholds,
                            extract_to=args.extract_to, max_missing=args.max_missing, workers=args.workers,
                            progress=show_progress(args))
    report = verify(options)
    if args.report is not None:
        write_report(report, args.report, args.max_missing)
    rows = [[name] + [c[s] for s in STATUSES] for name, c in report.per_class().items()]
    counts = report.counts()
    rows.append(["TOTAL"] + [counts[s] for s in STATUSES])
    echo(format_table(["class"] + list(STATUSES), rows))
    for split, n in report.not_in_layout.items():
        echo(f"  not checked: {n} {split} clip(s) -- the {report.layout} has no place for split {split}")
    for note in report.notes:
        echo(f"  note: {note}")
    for item in report.export_findings[:args.show]:
        echo(f"  export    {item['message']}")
    failing = [c for c in report.clips if c["status"] in ("different", "missing")]
    for clip in failing[:args.show]:
        echo(f"  {clip['status']:9} {clip['clip_id']}: {clip['reason']}")
    hidden = max(0, len(failing) - args.show) + max(0, len(report.export_findings) - args.show)
    if hidden:
        echo(f"  ... and {hidden} more" + (f" (see {args.report})" if args.report else " (--report writes them all)"))
    passed = report.passed(args.max_missing)
    where = f"report {args.report}" if args.report is not None else "no report written (--report FILE)"
    echo(f"verify ({report.layout}, release {report.version}): {'PASSED' if passed else 'FAILED'}; {where}")
    return 0 if passed else 1
