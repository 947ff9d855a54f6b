"""llinet-build fetch: download each selected clip's segment (yt-dlp), fill to quota, resumable."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from builder.cli.args import add_option, add_renamed_positional, require_one_of, show_progress
from builder.cli.logs import echo
from builder.errors import InputError
from builder.fetch.options import STATUS_LOG
from builder.fetch.runtime import JS_RUNTIMES
from builder.fetch.stage import FetchOptions, fetch
from builder.manifest.media_root import CLIPS_DIR
from builder.manifest.media_root import MANIFEST as MANIFEST_NAME
from builder.manifest.schema import read_manifest, read_manifest_dir, refuse_lossy_overwrite, write_manifest
from builder.media.stage import StageRunOptions

EXIT_HALTED = 3
# Downloads wait on the network, so the command starts several by default; FetchOptions (the
# library default, used by tests and benches) keeps one.
CLI_WORKERS = 4
log = logging.getLogger(__name__)


def load_manifests(paths: list[Path], *, strict: bool = False) -> tuple[pd.DataFrame, str]:
    """Read manifest CSVs or manifest folders (clips.csv + reserve.csv) into one frame.

    ``strict``: the media stages' row checks too (segment length, clip ID = ytid + start)."""
    parts = [read_manifest_dir(p, strict=strict) if p.is_dir() else read_manifest(p, strict=strict) for p in paths]
    df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    dupes = df["clip_id"][df["clip_id"].duplicated()]
    if len(dupes):
        raise InputError(f"clip {dupes.iloc[0]!r} appears in more than one input manifest",
                         file=", ".join(map(str, paths)))
    return df, ", ".join(map(str, paths))


def add_distributor_args(p: argparse.ArgumentParser, defaults: type[FetchOptions] | type[StageRunOptions],
                         workers: int | None = None) -> None:
    """--workers/--distributor/--ray-address/--no-progress, defaults from a stage's options class."""
    p.add_argument("--workers", type=int, default=defaults.workers if workers is None else workers, metavar="N",
                   help="worker processes (per node with Ray)")
    p.add_argument("--distributor", choices=("local", "ray"), default=defaults.distributor,
                   help="local process pool or Ray")
    p.add_argument("--ray-address", default=defaults.ray_address, metavar="ADDR",
                   help="existing Ray cluster (e.g. ray://head:10001 or auto); default: a local instance")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_youtube_args(p: argparse.ArgumentParser) -> None:
    """--js-runtime (also read by doctor), --extractor-args and --cache-dir: what yt-dlp needs for YouTube."""
    d = FetchOptions
    p.add_argument("--js-runtime", default=d.js_runtime, metavar="NAME[:PATH]",
                   help=f"JavaScript runtime for YouTube's challenges: {', '.join(JS_RUNTIMES)}, optionally with "
                        "the path of its executable or folder (default: the Deno installed with llinet, next "
                        "to this Python, else deno on PATH)")
    p.add_argument("--extractor-args", action="append", default=list(d.extractor_args), metavar="IE_KEY:ARGS",
                   help="passed to yt-dlp as its --extractor-args, e.g. youtube:player_client=default,mweb "
                        "(repeatable)")
    p.add_argument("--cache-dir", type=Path, default=d.cache_dir, metavar="DIR",
                   help="yt-dlp's cache (YouTube's player code and solved challenges; shared by the workers "
                        "of a machine; default: yt-dlp's own, $XDG_CACHE_HOME/yt-dlp or ~/.cache/yt-dlp)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fetch", help="download clip segments with yt-dlp (resumable, fills to quota)",
                       description="Download each selected clip's [start, end] section (video <= --height "
                                   "plus best audio, one file per clip), verify it with ffprobe and replace "
                                   "unavailable clips from the ranked reserve. Rerun the same command to resume.")
    d = FetchOptions
    manifest_dir = p.add_argument("--manifest-dir", nargs="+", type=Path, default=None, metavar="DIR",
                                  help="manifest folder(s) with clips.csv + reserve.csv (from select/split)")
    manifest = p.add_argument("--manifest", nargs="+", type=Path, default=None, metavar="CSV",
                              help="manifest CSV(s) to fetch instead of, or besides, --manifest-dir")
    add_renamed_positional(p, manifest_dir, "MANIFEST", nargs="*", type=Path)
    require_one_of(p, manifest_dir, manifest)
    add_option(p, "--root", deprecated=["--out"], type=Path, required=True, metavar="ROOT",
               help=f"media root: {CLIPS_DIR}/, {STATUS_LOG} and the output manifest go here")
    p.add_argument("--manifest-out", type=Path, default=None, metavar="CSV",
                   help=f"output manifest (default ROOT/{MANIFEST_NAME})")
    p.add_argument("--url-template", default=d.url_template,
                   help="URL per clip; {ytid} / {clip_id} are substituted (e.g. http://mirror/{ytid}.mp4)")
    p.add_argument("--whole-file", action="store_true",
                   help="the URL already serves just the segment: download it whole, no section cut")
    p.add_argument("--height", type=int, default=d.max_height, metavar="PX", help="video height cap in pixels")
    p.add_argument("--cookies", type=Path, default=d.cookies, metavar="FILE",
                   help="Netscape cookies.txt of a signed-in browser session (YouTube bot checks)")
    p.add_argument("--proxy", default=d.proxy, metavar="URL", help="HTTP/SOCKS proxy URL")
    p.add_argument("--sleep-requests", type=float, default=d.sleep_requests, metavar="S",
                   help="seconds to sleep between yt-dlp's extraction requests")
    p.add_argument("--max-rate", type=float, default=d.max_rate, metavar="CLIPS_PER_S",
                   help="at most this many clip downloads started per second on this machine (0 = no limit)")
    p.add_argument("--retries", type=int, default=d.retries, metavar="N",
                   help="extra attempts after a transient failure")
    p.add_argument("--backoff", type=float, default=d.backoff, metavar="S",
                   help="base of the exponential backoff between attempts, seconds (plus jitter)")
    p.add_argument("--timeout", type=float, default=d.timeout, metavar="S", help="network timeout, seconds")
    p.add_argument("--tolerance", type=float, default=d.tolerance, metavar="S",
                   help="accepted difference between the file's and the segment's duration, seconds")
    p.add_argument("--burst-429", type=int, default=d.burst_429, metavar="N",
                   help=f"halt after N HTTP 429 answers within {d.burst_window:g} s on this machine")
    p.add_argument("--no-fill", action="store_true", help="do not replace unavailable clips from the reserve")
    p.add_argument("--cap", type=int, default=d.cap, metavar="N",
                   help="clips per class (default: the number initially selected in that class)")
    p.add_argument("--extractor", default=d.extractor, metavar="MODULE:CLASS",
                   help="force this yt-dlp extractor class (custom mirrors with their own metadata API)")
    p.add_argument("--allow-drop-rows", action="store_true",
                   help="write the output manifest even if it lacks rows of the one already there "
                        "(their trim/frames columns are lost); refused otherwise")
    add_youtube_args(p)
    add_distributor_args(p, FetchOptions, workers=CLI_WORKERS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest, source = load_manifests(list(args.manifest_dir or []) + list(args.manifest or []), strict=True)
    out_path = args.manifest_out or args.root / MANIFEST_NAME
    refuse_lossy_overwrite(manifest, out_path, source, "--allow-drop-rows", args.allow_drop_rows)
    options = FetchOptions(
        root=args.root, url_template=args.url_template, max_height=args.height, sections=not args.whole_file,
        cookies=args.cookies, proxy=args.proxy, sleep_requests=args.sleep_requests, max_rate=args.max_rate,
        workers=args.workers, retries=args.retries, backoff=args.backoff, timeout=args.timeout,
        tolerance=args.tolerance, fill=not args.no_fill, cap=args.cap, burst_429=args.burst_429,
        distributor=args.distributor, ray_address=args.ray_address, extractor=args.extractor,
        js_runtime=args.js_runtime, extractor_args=tuple(args.extractor_args), cache_dir=args.cache_dir,
        progress=show_progress(args))
    try:
        result, summary = fetch(manifest, options, source=source)
    except KeyboardInterrupt:
        log.warning("fetch: interrupted; finished clips are kept, rerun the same command to resume")
        raise
    write_manifest(result, out_path)
    echo(summary.table())
    echo(f"wrote {out_path} ({int(result['selected'].sum())} selected, "
         f"{int((result['fetch_status'] == 'ok').sum())} files in {args.root / CLIPS_DIR})")
    if summary.halted:
        log.error(f"fetch HALTED ({summary.halted.get('error_class')}): {summary.halted.get('message')}\n"
                  f"what to do: {summary.halted.get('advice')}")
        return EXIT_HALTED
    return 0
