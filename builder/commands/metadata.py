"""``llinet-build metadata``: fetch the AudioSet ontology and segment lists into a folder."""
from __future__ import annotations

import argparse

from builder.audioset.download import (
    METADATA_FILES,
    UNBALANCED,
    copy_metadata,
    download_metadata,
    stderr_log,
)
from builder.cli.args import add_option, show_progress
from builder.cli.logs import echo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "metadata",
        help="download (or copy) the AudioSet ontology and segment lists, sha256-verified",
        description=(
            "Fetch ontology.json, class_labels_indices.csv and the balanced, eval and unbalanced "
            "segment lists into OUT. Downloads resume where they stopped (rerun the same command); "
            "the four files with a pinned sha256 (all but the unbalanced list) are verified and only "
            "ever appear complete. OUT/metadata_manifest.json records sources, sizes and hashes."),
    )
    add_option(parser, "--out", deprecated=["--dest"], required=True, metavar="DIR",
               help="folder to write the files into")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--from", dest="from_dir", metavar="DIR",
                        help="copy from a local copy of the files instead of downloading; "
                             "the unbalanced list may be split into unbalanced_partial_csvs/*.csv")
    source.add_argument("--base-url", metavar="URL",
                        help="download all files from URL/<name> (a mirror) instead of Google's storage "
                             "and the audioset/ontology GitHub repository")
    parser.add_argument("--files", nargs="+", choices=METADATA_FILES, default=list(METADATA_FILES),
                        metavar="NAME", help="only these files")
    parser.add_argument("--no-unbalanced", action="store_true",
                        help=f"skip {UNBALANCED} (about 2 M segments; not needed for the balanced/eval demo)")
    parser.add_argument("--link", action="store_true",
                        help="with --from: hard-link instead of copying where the filesystem allows")
    parser.add_argument("--retries", type=int, default=4, metavar="N",
                        help="retries after a transient network error, with exponential backoff")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="network timeout per request")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [name for name in args.files if not (args.no_unbalanced and name == UNBALANCED)]
    if not names:
        echo("llinet-build metadata: nothing to do (every requested file was excluded)")
        return 0
    if args.from_dir is not None:
        records = copy_metadata(args.out, args.from_dir, names=names, link=args.link, log=stderr_log)
    else:
        records = download_metadata(args.out, names=names, base_url=args.base_url,
                                    retries=max(0, args.retries), timeout_s=args.timeout,
                                    progress=show_progress(args), log=stderr_log)
    unverified = [r.path for r in records if r.verified.startswith("not")]
    echo(f"{len(records)} file(s) in {args.out}: "
         + ", ".join(f"{sum(r.action == a for r in records)} {a}"
                     for a in ("downloaded", "copied", "linked", "already present")
                     if any(r.action == a for r in records)))
    if unverified:
        echo(f"no pinned sha256 for {', '.join(unverified)}: hash recorded in metadata_manifest.json, not checked")
    return 0
