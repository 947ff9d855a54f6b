"""llinet-build release: ID manifest, masks, stats, figure, provenance, datasheet, README, Croissant, SHA256SUMS."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from builder.cli.args import add_option, show_progress
from builder.cli.logs import echo
from builder.commands.common import format_table
from builder.commands.export import add_build_args, add_out_arg, build_inputs
from builder.manifest.schema import read_manifest
from builder.release.build import ReleaseOptions, build_release
from builder.release.metadata import load_release_config, parse_agent


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="publish a versioned, checksummed, verifiable release",
                       description=__doc__)
    p.add_argument("--version", required=True, metavar="X.Y.Z", help="release version (semantic versioning)")
    add_build_args(p)
    add_option(p, "--manifest-dir", deprecated=["--manifests-dir"], type=Path, default=None, metavar="DIR",
               help="manifest folder with select_report.json / audit.json (their options go into provenance.json)")
    p.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                   help="release date, Croissant's datePublished (default: SOURCE_DATE_EPOCH's day, else today, "
                        "UTC; never before the build's last recorded stage run); fixes every timestamp")
    p.add_argument("--pack-media", action="store_true",
                   help="also write media-X.Y.Z.tar with the built audio and frames")
    meta = p.add_argument_group(
        "dataset metadata (croissant.json, DATASET.md)",
        "Also settable in a --config file (TOML or JSON; see builder.release.metadata); options given here win. "
        "Nobody is invented: an unset creator or publisher is written as UNSET, with a warning.")
    meta.add_argument("--config", type=Path, default=None, metavar="FILE",
                      help="release config file: name, url, license, sd_license, in_language, creator, publisher, "
                           "date_created, date_modified, description")
    # None = not given here: the config file's value, else the ReleaseOptions default (shown in the help).
    meta.add_argument("--name", default=None, help=f"dataset name (default: {ReleaseOptions.name})")
    meta.add_argument("--url", default=None, help=f"dataset URL (default: {ReleaseOptions.url})")
    meta.add_argument("--license", dest="license_url", default=None, metavar="URL",
                      help=f"licence of the release's metadata (default: {ReleaseOptions.license_url}, CC BY 4.0 "
                           "like AudioSet's lists)")
    meta.add_argument("--sd-license", default=None, metavar="URL",
                      help="licence of croissant.json itself (default: the --license)")
    meta.add_argument("--creator", action="append", default=None, metavar="'NAME [<URL>]'",
                      help="a creator (a person; repeatable)")
    meta.add_argument("--publisher", action="append", default=None, metavar="'NAME [<URL>]'",
                      help="a publisher (an organisation; repeatable)")
    meta.add_argument("--language", dest="in_language", action="append", default=None, metavar="CODE",
                      help=f"language of the labels and texts, BCP 47 (repeatable; default: "
                           f"{' '.join(ReleaseOptions.in_language)})")
    meta.add_argument("--date-created", default=None, metavar="YYYY-MM-DD",
                      help="default: the first day a stage recorded")
    meta.add_argument("--date-modified", default=None, metavar="YYYY-MM-DD",
                      help="default: the last day a stage recorded")
    p.add_argument("--datasheet", type=Path, default=None, metavar="DATASET.md",
                   help="rewrite this datasheet's release-stats section from the new release")
    add_out_arg(p, "release folder (must not exist or be empty)")
    p.set_defaults(func=run)


def metadata_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config file's settings, overridden by the options given on the command line."""
    out = load_release_config(args.config) if args.config is not None else {}
    for name in ("name", "url", "license_url", "sd_license", "date_created", "date_modified"):
        if getattr(args, name) is not None:
            out[name] = getattr(args, name)
    if args.in_language:
        out["in_language"] = tuple(args.in_language)
    if args.creator:
        out["creator"] = tuple(parse_agent(text, "Person") for text in args.creator)
    if args.publisher:
        out["publisher"] = tuple(parse_agent(text, "Organization") for text in args.publisher)
    return out


def run(args: argparse.Namespace) -> int:
    manifest_path, annotations = build_inputs(args)
    manifest = read_manifest(manifest_path)
    summary = build_release(manifest, ReleaseOptions(
        root=args.root, out=args.out, version=args.version, annotations=annotations,
        manifests_dir=args.manifest_dir, manifest_path=manifest_path, date=args.date,
        pack_media=args.pack_media, progress=show_progress(args), **metadata_options(args)))
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
