"""``llinet-eval``: zero-shot retrieval, recognition and localisation metrics + report.

    llinet-eval --checkpoint runs/x/best.pt --root ROOT --split test --out reports/x

reads ROOT/manifest.csv and the masks ROOT/annotations.json (``--manifest`` and
``--masks`` name other files) and writes ``metrics.json``, ``report.md``, PNG figures and ``embeddings.npz``
(rerun the metrics without the model: ``--embeddings reports/x/embeddings.npz``).
``llinet-eval --table REPORT [REPORT ...] --out DIR`` turns such reports of several methods and
seeds into the paper's Table 1 layout beside the published numbers (model/evaluation/table.py).
Bad input is printed without a traceback (exit 2). The same from Python:
:func:`model.evaluation.api.evaluate`. See model/evaluation/report.py for what each
number means.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from builder.cli import logs
from builder.cli.args import CommandParser, add_option, verbosity
from builder.errors import LlinetError
from builder.manifest.media_root import MediaRoot
from model.evaluation.api import EvalOptions, evaluate
from model.evaluation.table import write_table_report


def _root_defaults(parser: CommandParser, args: argparse.Namespace) -> None:
    """--root alone is enough: the manifest and the masks are the media root's unless named."""
    if args.media_root is None:
        return
    root = MediaRoot(args.media_root)
    if args.manifest is None and args.checkpoint:
        args.manifest = str(root.manifest)
    if args.masks is None and not args.no_localization and root.annotations.is_file():
        args.masks = str(root.annotations)


def build_parser() -> CommandParser:
    d = EvalOptions()
    p = CommandParser(prog="llinet-eval", description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PT", help="llinet-train checkpoint (.pt, loaded weights-only)")
    source.add_argument("--embeddings", metavar="NPZ",
                        help="embeddings.npz from an earlier llinet-eval run (no model)")
    source.add_argument("--table", nargs="+", metavar="REPORT",
                        help="llinet-eval output folders of several methods x seeds: write Table 1 (and the "
                             "recognition and localisation tables) as mean ± std beside the published numbers")
    add_option(p, "--root", deprecated=["--media-root"], dest="media_root", metavar="ROOT",
               help="media root: relative media paths start here; its manifest.csv and annotations.json are "
                    "the default --manifest and --masks (without --root, media paths start at the manifest's "
                    "folder)")
    p.add_argument("--manifest", metavar="CSV",
                   help="manifest with clip_id, class, split, audio_path, frame_path (with --checkpoint: "
                        "--root or --manifest is required)")
    p.add_argument("--split", default=d.split, metavar="NAME", help="split to evaluate")
    p.add_argument("--val-split", default=d.val_split, metavar="NAME",
                   help="validation split: chooses localisation k and the GZSL constant")
    p.add_argument("--seen-split", default=d.seen_split, metavar="NAME", help="seen-class test split for GZSL")
    p.add_argument("--seen-val-split", default=d.seen_val_split, metavar="NAME",
                   help="seen-class validation split for GZSL calibration (from `llinet-build split --preset gzsl`)")
    p.add_argument("--gzsl-train-per-class", type=int, default=d.gzsl_train_per_class, metavar="N",
                   help="without a seen-class validation split: train clips per seen class used instead "
                        "(0 = no GZSL)")
    p.add_argument("--gzsl-exclude-own", action="store_true", help="leave each image's own clip out of prototypes")
    p.add_argument("--masks", metavar="JSON", help="COCO annotation JSON with the test masks (llinet-build annotate)")
    p.add_argument("--no-localization", action="store_true", help="skip localisation (no masks needed)")
    add_option(p, "--out", deprecated=["--report"], dest="report", required=True, metavar="DIR",
               help="output folder for the report")
    p.add_argument("--batch-size", type=int, default=d.batch_size, metavar="N", help="clips per forward pass")
    g = p.add_argument_group("the authors' evaluation (opt-in; see --recipe official-code of llinet-train)")
    g.add_argument("--drop-last-batch", action="store_true",
                   help="leave out the evaluated split's clips after its last complete --batch-size batch, as the "
                        "authors' test loader (drop_last=True; 11 of INSTRUMENT-32's 747 test clips at batch 32)")
    g.add_argument("--iou-epsilon", type=float, default=d.iou_epsilon, metavar="EPS",
                   help="LLINet localisation IoU = intersection / (union + EPS); the authors' code uses 1e-5, so an "
                        "IoU exactly on a threshold fails it")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--workers", type=int, default=d.workers, metavar="N", help="media decoding workers")
    p.add_argument("--skip-bad", action="store_true", help="drop clips whose media cannot be decoded")
    p.add_argument("--draws", type=int, default=d.draws, metavar="N",
                   help="random query draws for the LLINet-mAP spread")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the query draws")
    p.add_argument("--overlays", type=int, default=d.overlays, metavar="N", help="attention-map overlays to draw")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.after_parse.append(_root_defaults)
    return p


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    """The parsed command line as EvalOptions (--no-X flags become X=False)."""
    given = vars(args)
    values = {f.name: given[f.name] for f in fields(EvalOptions) if f.name in given}
    values["localization"] = not given.get("no_localization", False)
    values["progress"] = not given.get("no_progress", False)
    return EvalOptions(**values)


def run(args: argparse.Namespace) -> int:
    if args.table:
        files = write_table_report(args.table, args.report)
        logs.echo(f"table: {files['markdown']}")
        return 0
    result = evaluate(options_from_args(args))
    logs.echo(result.summary())
    logs.echo(f"report: {result.files['report']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # a warning about a deprecated spelling while parsing reads like every other line
    args = build_parser().parse_args(argv)
    logs.configure(verbosity(args))
    if verbosity(args) < 0:
        args.no_progress = True
    try:
        return run(args)
    except LlinetError as exc:
        print(f"llinet-eval: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llinet-eval: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
