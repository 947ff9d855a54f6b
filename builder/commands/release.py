"""llinet-build release: ID manifest, COCO masks, stats, figure, provenance, Croissant and SHA256SUMS."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.args import add_option, show_progress
from builder.cli.logs import echo
from builder.commands.common import format_table
from builder.commands.export import add_build_args, add_out_arg, build_inputs
from builder.manifest.schema import read_manifest
from builder.release.build import ReleaseOptions, build_release


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="publish a versioned, checksummed, verifiable release",
                       description=__doc__)
    p.add_argument("--version", required=True, metavar="X.Y.Z", help="release version (semantic versioning)")
    add_build_args(p)
    add_option(p, "--manifest-dir", deprecated=["--manifests-dir"], type=Path, default=None, metavar="DIR",
               help="manifest folder with select_report.json / audit.json (their options go into provenance.json)")
    p.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                   help="release date (default: SOURCE_DATE_EPOCH's day, else today, UTC); fixes every timestamp")
    p.add_argument("--pack-media", action="store_true",
                   help="also write media-X.Y.Z.tar with the built audio and frames")
    p.add_argument("--name", default=ReleaseOptions.name, help="dataset name in croissant.json")
    p.add_argument("--url", default=ReleaseOptions.url, help="dataset URL in croissant.json")
    p.add_argument("--license", dest="license_url", default=ReleaseOptions.license_url, metavar="URL",
                   help="licence of the release's metadata; the default is CC BY 4.0, like AudioSet's lists")
    p.add_argument("--datasheet", type=Path, default=None, metavar="DATASET.md",
                   help="rewrite this datasheet's release-stats section from the new release")
    add_out_arg(p, "release folder (must not exist or be empty)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    manifest_path, annotations = build_inputs(args)
    manifest = read_manifest(manifest_path)
    summary = build_release(manifest, ReleaseOptions(
        root=args.root, out=args.out, version=args.version, annotations=annotations,
        manifests_dir=args.manifest_dir, manifest_path=manifest_path, date=args.date,
        pack_media=args.pack_media, name=args.name, url=args.url, license_url=args.license_url,
        progress=show_progress(args)))
    stats = summary.stats
    rows = [[split, v["clips"], v["classes"], v["masks"], f"{v['audio_seconds'] / 3600:.2f}"]
            for split, v in stats["per_split"].items()]
    echo(format_table(["split", "clips", "classes", "masks", "audio h"], rows))
    avail = stats["availability"]
    echo("availability at build time: " + ", ".join(
        f"{k} {avail[k]}" for k in ("available", "unavailable", "failed", "not_checked") if k in avail))
    echo(f"release {args.version}: {len(summary.files)} files in {args.out} (check with "
         f"`cd {args.out} && sha256sum -c SHA256SUMS`)")
    if args.datasheet is not None:
        from builder.release.stats import update_release_stats
        changed = update_release_stats(args.datasheet, args.out)
        echo(f"{args.datasheet}: release-stats section {'updated' if changed else 'already up to date'}")
    return 0
