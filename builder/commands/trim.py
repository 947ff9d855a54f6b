"""llinet-build trim: cut each fetched clip's audio to a 3 s window (WAV, exact sample count)."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.args import show_progress
from builder.cli.logs import echo
from builder.commands.fetch import MANIFEST_NAME, add_distributor_args, load_manifests
from builder.manifest.schema import write_manifest
from builder.media.trim import POLICIES, TrimOptions, trim


def add_media_io_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, required=True, metavar="ROOT",
                   help="media root written by `fetch` (paths in the manifest are relative to it)")
    p.add_argument("--manifest", type=Path, default=None, metavar="CSV",
                   help=f"input manifest (default ROOT/{MANIFEST_NAME})")
    p.add_argument("--manifest-out", type=Path, default=None, metavar="CSV",
                   help="output manifest (default: overwrite the input manifest, atomically)")
    p.add_argument("--all", action="store_true", dest="include_unselected",
                   help="also process fetched clips outside the final selection")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trim", help="cut each clip's audio to a fixed window (WAV)",
                       description=__doc__)
    add_media_io_args(p)
    d = TrimOptions
    p.add_argument("--window", type=float, default=d.window, metavar="S", help="window length, seconds")
    p.add_argument("--policy", choices=POLICIES, default=d.policy,
                   help="window position: first (paper), center, loudest (max RMS)")
    p.add_argument("--sample-rate", type=int, default=d.sample_rate or 0, metavar="HZ",
                   help="output rate (0 keeps the source rate)")
    p.add_argument("--mono", action="store_true", help="downmix to mono (default: keep channels)")
    p.add_argument("--silence-dbfs", type=float, default=d.silence_dbfs, metavar="DB",
                   help="flag windows whose RMS is below this level (dBFS) as silent")
    add_distributor_args(p, TrimOptions)
    p.set_defaults(func=run)


def io_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    src = args.manifest or args.root / MANIFEST_NAME
    return src, args.manifest_out or src


def print_counts(stage: str, counts, out: Path) -> None:
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v)
    echo(f"{stage}: {shown or 'nothing to do'}; wrote {out}")


def run(args: argparse.Namespace) -> int:
    src, out = io_paths(args)
    manifest, _ = load_manifests([src], strict=True)
    options = TrimOptions(root=args.root, window=args.window, policy=args.policy,
                          sample_rate=args.sample_rate or None, mono=args.mono, silence_dbfs=args.silence_dbfs,
                          include_unselected=args.include_unselected, workers=args.workers,
                          distributor=args.distributor, ray_address=args.ray_address,
                          progress=show_progress(args))
    result, counts = trim(manifest, options, source=str(src))
    write_manifest(result, out)
    print_counts("trim", counts, out)
    return 0
