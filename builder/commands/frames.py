"""llinet-build frames: grab the frame at the centre of each clip's audio window (JPEG, full + square)."""
from __future__ import annotations

import argparse

from builder.cli.args import show_progress
from builder.commands.fetch import add_distributor_args, load_manifests
from builder.commands.trim import add_media_io_args, io_paths, print_counts
from builder.manifest.schema import write_manifest
from builder.media.frames import FrameOptions, frames


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("frames", help="grab each clip's window-centre frame (JPEG full + centre square)",
                       description=__doc__)
    add_media_io_args(p)
    d = FrameOptions
    p.add_argument("--frames-per-clip", type=int, default=d.frames_per_clip, metavar="K",
                   help="K frames evenly spaced in the window (1: the centre)")
    p.add_argument("--jpeg-quality", type=int, default=d.jpeg_quality, metavar="Q", help="JPEG quality 1-100")
    p.add_argument("--dark-luma", type=float, default=d.dark_luma, metavar="L",
                   help="flag frames with mean luma below this (0-255)")
    p.add_argument("--uniform-std", type=float, default=d.uniform_std, metavar="L",
                   help="flag frames with luma std below this")
    add_distributor_args(p, FrameOptions)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    src, out = io_paths(args)
    manifest, _ = load_manifests([src], strict=True)
    options = FrameOptions(root=args.root, frames_per_clip=args.frames_per_clip, jpeg_quality=args.jpeg_quality,
                           dark_luma=args.dark_luma, uniform_std=args.uniform_std,
                           include_unselected=args.include_unselected, workers=args.workers,
                           distributor=args.distributor, ray_address=args.ray_address,
                           progress=show_progress(args))
    result, counts = frames(manifest, options, source=str(src))
    write_manifest(result, out)
    print_counts("frames", counts, out)
    return 0
