"""llinet-build export: write the built dataset as the official layout, WebDataset shards or HF Parquet."""
from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.args import CommandParser, add_renamed_positional, show_progress
from builder.cli.logs import echo
from builder.commands.common import format_table
from builder.export.stage import FORMATS, ExportOptions, export
from builder.io.tarball import default_mtime
from builder.manifest.media_root import ANNOTATIONS as ANNOTATIONS_NAME
from builder.manifest.media_root import MANIFEST as MANIFEST_NAME
from builder.manifest.schema import read_manifest


def add_build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, required=True, metavar="ROOT",
                   help="media root of the build (manifest paths are relative to it)")
    p.add_argument("--manifest", type=Path, default=None, metavar="CSV",
                   help=f"manifest after trim/frames (and curate); default ROOT/{MANIFEST_NAME}")
    p.add_argument("--annotations", type=Path, default=None, metavar="JSON",
                   help=f"COCO masks from `annotate`; default ROOT/{ANNOTATIONS_NAME} when it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_inputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    manifest = args.manifest or args.root / MANIFEST_NAME
    annotations = args.annotations
    if annotations is None and (args.root / ANNOTATIONS_NAME).is_file():
        annotations = args.root / ANNOTATIONS_NAME
    return manifest, annotations


def add_out_arg(p: CommandParser, help: str) -> None:
    """--out DIR (required), which was a positional argument."""
    out = p.add_argument("--out", type=Path, required=True, metavar="DIR", help=help)
    add_renamed_positional(p, out, "OUT", type=Path)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export the built dataset (official layout, WebDataset, HF Parquet)",
                       description=__doc__)
    add_build_args(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--layout", choices=("llinet",), dest="format",
                       help="the authors' traindata/ layout and index pickles (= --format llinet)")
    group.add_argument("--format", choices=FORMATS, dest="format",
                       help="llinet (official layout), webdataset (tar shards) or hf (Parquet)")
    p.add_argument("--shard-size", type=int, default=ExportOptions.shard_size, metavar="N",
                   help="clips per WebDataset shard / Parquet file")
    add_out_arg(p, "destination folder (empty, or an earlier export)")
    p.set_defaults(func=run, format=ExportOptions.format)


def run(args: argparse.Namespace) -> int:
    manifest_path, annotations = build_inputs(args)
    manifest = read_manifest(manifest_path)
    report = export(manifest, ExportOptions(root=args.root, out=args.out, format=args.format,
                                            annotations=annotations, shard_size=args.shard_size,
                                            mtime=default_mtime(), progress=show_progress(args),
                                            source=str(manifest_path)))
    rows = [[split, name, n] for split, classes in report.counts.items() for name, n in classes.items()]
    echo(format_table(["split", "class", "clips"], rows))
    total = sum(n for classes in report.counts.values() for n in classes.values())
    echo(f"export {report.format}: {total} clips, {report.masks} masks, {len(report.files)} files in {args.out}")
    if report.excluded:
        echo("not exported: " + ", ".join(f"{k} {v}" for k, v in report.excluded.items()))
    for note in report.notes:
        echo(f"note: {note}")
    return 0
