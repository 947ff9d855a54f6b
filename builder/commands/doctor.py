"""llinet-build doctor: check, one line each, what a real fetch needs (exit 1 when something required is missing)."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.logs import echo
from builder.commands.fetch import add_youtube_args
from builder.doctor.report import exit_status, render
from builder.doctor.run import DoctorOptions, run_checks
from builder.fetch.options import FetchOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor", help="check what a real fetch needs: FFmpeg, yt-dlp, its JavaScript runtime, cookies, disk",
        description="One line and verdict per item: FFmpeg and the encoders fetch uses, yt-dlp (warned when "
                    "it is old), its JavaScript runtime and EJS scripts, the cookies file, free disk space at "
                    "the media root against what the manifest needs, Ray (with --distributor ray) and, with "
                    "--online, a live extraction of one AudioSet video's formats. Exits 1 when a required "
                    "item is missing; warnings do not fail.")
    d = DoctorOptions
    p.add_argument("--root", type=Path, default=d.root, metavar="ROOT", help="media root the fetch will write")
    p.add_argument("--manifest-dir", nargs="+", type=Path, default=None, metavar="DIR",
                   help="manifest folder(s) to fetch (default: the committed INSTRUMENT-32 manifests)")
    p.add_argument("--manifest", nargs="+", type=Path, default=None, metavar="CSV",
                   help="manifest CSV(s) to fetch, instead of or besides --manifest-dir")
    p.add_argument("--cookies", type=Path, default=d.cookies, metavar="FILE",
                   help="the Netscape cookies.txt fetch will use: readable, well-formed, not expired")
    p.add_argument("--proxy", default=d.proxy, metavar="URL", help="proxy for the --online probe")
    p.add_argument("--height", type=int, default=d.max_height, metavar="PX", help="video height cap of the fetch")
    p.add_argument("--distributor", choices=("local", "ray"), default=d.distributor,
                   help="the fetch's distributor (ray: check that Ray is installed)")
    p.add_argument("--online", action="store_true",
                   help="extract one AudioSet video's formats from YouTube (offline: 'cannot reach', no failure)")
    p.add_argument("--url-template", default=FetchOptions.url_template, metavar="URL",
                   help="URL per clip, as for fetch")
    p.add_argument("--extractor", default=d.extractor, metavar="MODULE:CLASS",
                   help="force this yt-dlp extractor class, as for fetch")
    p.add_argument("--timeout", type=float, default=d.timeout, metavar="S", help="network timeout of --online")
    p.add_argument("--max-age", type=int, default=d.max_ytdlp_age_days, metavar="DAYS",
                   help="warn when the installed yt-dlp release is older than this")
    add_youtube_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = DoctorOptions(
        root=args.root, manifests=tuple(list(args.manifest_dir or []) + list(args.manifest or [])),
        cookies=args.cookies, js_runtime=args.js_runtime, extractor_args=tuple(args.extractor_args),
        cache_dir=args.cache_dir, proxy=args.proxy, url_template=args.url_template, extractor=args.extractor,
        max_height=args.height, distributor=args.distributor, online=args.online, timeout=args.timeout,
        max_ytdlp_age_days=args.max_age)
    checks = run_checks(options)
    echo(render(checks))
    return exit_status(checks)
