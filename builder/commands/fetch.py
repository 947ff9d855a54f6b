"""llinet-build fetch: download each selected clip's segment (yt-dlp), fill to quota, resumable."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from builder.errors import InputError
from builder.fetch.options import YOUTUBE_TEMPLATE
from builder.fetch.stage import FetchOptions, fetch
from builder.manifest.media_root import CLIPS_DIR
from builder.manifest.media_root import MANIFEST as MANIFEST_NAME
from builder.manifest.schema import read_manifest, read_manifest_dir, write_manifest

EXIT_HALTED = 3


def load_manifests(paths: list[Path]) -> tuple[pd.DataFrame, str]:
    """Read manifest CSVs or manifest folders (clips.csv + reserve.csv) into one frame."""
    parts = [read_manifest_dir(p) if p.is_dir() else read_manifest(p) for p in paths]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    dupes = df["clip_id"][df["clip_id"].duplicated()]
    if len(dupes):
        raise InputError(f"clip {dupes.iloc[0]!r} appears in more than one input manifest",
                         file=", ".join(map(str, paths)))
    return df, ", ".join(map(str, paths))


def add_distributor_args(p: argparse.ArgumentParser, default_workers: int = 1) -> None:
    p.add_argument("--workers", type=int, default=default_workers, metavar="N",
                   help=f"worker processes (per node with Ray; default {default_workers})")
    p.add_argument("--distributor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or Ray")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="existing Ray cluster (e.g. ray://head:10001 or auto); default: a local instance")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="download clip segments with yt-dlp (resumable, fills to quota)",
                       description="Download each selected clip's [start, end] section (video <= --height "
                                   "plus best audio, one file per clip), verify it with ffprobe and replace "
                                   "unavailable clips from the ranked reserve. Rerun the same command to resume.")
    p.add_argument("manifests", nargs="+", type=Path, metavar="MANIFEST",
                   help="manifest CSV(s) or folder(s) with clips.csv + reserve.csv")
    p.add_argument("--out", type=Path, required=True, metavar="ROOT",
                   help="media root: clips/, fetch_status.jsonl and the output manifest go here")
    p.add_argument("--manifest-out", type=Path, default=None, metavar="CSV",
                   help=f"output manifest (default ROOT/{MANIFEST_NAME})")
    p.add_argument("--url-template", default=YOUTUBE_TEMPLATE,
                   help="URL per clip; {ytid} / {clip_id} are substituted (default: the YouTube watch URL; "
                        "e.g. http://mirror/{ytid}.mp4)")
    p.add_argument("--whole-file", action="store_true",
                   help="the URL already serves just the segment: download it whole, no section cut")
    p.add_argument("--height", type=int, default=720, help="video height cap in pixels (default 720)")
    p.add_argument("--cookies", type=Path, default=None, metavar="FILE",
                   help="Netscape cookies.txt of a signed-in browser session (YouTube bot checks)")
    p.add_argument("--proxy", default=None, metavar="URL", help="HTTP/SOCKS proxy URL")
    p.add_argument("--sleep-requests", type=float, default=0.0, metavar="S",
                   help="seconds to sleep between yt-dlp's extraction requests")
    p.add_argument("--max-rate", type=float, default=0.0, metavar="CLIPS_PER_S",
                   help="at most this many clip downloads started per second on this machine (0 = no limit)")
    p.add_argument("--retries", type=int, default=3, help="extra attempts after a transient failure (default 3)")
    p.add_argument("--backoff", type=float, default=2.0, metavar="S",
                   help="base of the exponential backoff between attempts (default 2 s, plus jitter)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="network timeout (default 30 s)")
    p.add_argument("--tolerance", type=float, default=0.5, metavar="S",
                   help="accepted difference between the file's and the segment's duration (default 0.5 s)")
    p.add_argument("--burst-429", type=int, default=3, metavar="N",
                   help="halt after N HTTP 429 answers within 5 minutes on this machine (default 3)")
    p.add_argument("--no-fill", action="store_true", help="do not replace unavailable clips from the reserve")
    p.add_argument("--cap", type=int, default=None,
                   help="clips per class (default: the number initially selected in that class)")
    p.add_argument("--extractor", default=None, metavar="MODULE:CLASS",
                   help="force this yt-dlp extractor class (custom mirrors with their own metadata API)")
    add_distributor_args(p, default_workers=4)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest, source = load_manifests(args.manifests)
    options = FetchOptions(
        root=args.out, url_template=args.url_template, max_height=args.height, sections=not args.whole_file,
        cookies=args.cookies, proxy=args.proxy, sleep_requests=args.sleep_requests, max_rate=args.max_rate,
        workers=args.workers, retries=args.retries, backoff=args.backoff, timeout=args.timeout,
        tolerance=args.tolerance, fill=not args.no_fill, cap=args.cap, burst_429=args.burst_429,
        distributor=args.distributor, ray_address=args.ray_address, extractor=args.extractor,
        progress=not args.no_progress)
    out_path = args.manifest_out or args.out / MANIFEST_NAME
    try:
        result, summary = fetch(manifest, options, source=source)
    except KeyboardInterrupt:
        print("fetch: interrupted; finished clips are kept, rerun the same command to resume", file=sys.stderr)
        raise
    write_manifest(result, out_path)
    print(summary.table())
    print(f"wrote {out_path} ({int(result['selected'].sum())} selected, "
          f"{int((result['fetch_status'] == 'ok').sum())} files in {args.out / CLIPS_DIR})")
    if summary.halted:
        print(f"\nfetch HALTED ({summary.halted.get('error_class')}): {summary.halted.get('message')}\n"
              f"what to do: {summary.halted.get('advice')}", file=sys.stderr)
        return EXIT_HALTED
    return 0
