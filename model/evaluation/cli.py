"""``llinet-eval``: zero-shot retrieval, recognition and localisation metrics + report.

    llinet-eval --checkpoint runs/x/best.pt --manifest M.csv --split test \\
                --masks annotations.json --report reports/x

writes ``metrics.json``, ``report.md``, PNG figures and ``embeddings.npz``
(rerun the metrics without the model: ``--embeddings reports/x/embeddings.npz``).
Bad input is printed without a traceback (exit 2). The same from Python:
:func:`model.evaluation.api.evaluate`. See model/evaluation/report.py for what each
number means.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from builder.errors import LlinetError
from model.evaluation.api import EvalOptions, evaluate


def build_parser() -> argparse.ArgumentParser:
    d = EvalOptions()
    p = argparse.ArgumentParser(prog="llinet-eval", description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="llinet-train checkpoint (.pt, loaded weights-only)")
    source.add_argument("--embeddings", help="embeddings.npz from an earlier llinet-eval run (no model)")
    p.add_argument("--manifest", help="manifest with clip_id, class, split, audio_path, frame_path "
                                      "(required with --checkpoint)")
    p.add_argument("--media-root", help="folder relative media paths start from (default: the manifest's)")
    p.add_argument("--split", default=d.split, help="split to evaluate (default: %(default)s)")
    p.add_argument("--val-split", default=d.val_split,
                   help="validation split: chooses localisation k and the GZSL constant (default: %(default)s)")
    p.add_argument("--seen-split", default=d.seen_split, help="seen-class test split for GZSL (default: %(default)s)")
    p.add_argument("--seen-val-split", default=d.seen_val_split,
                   help="seen-class validation split for GZSL calibration (default: %(default)s, from "
                        "`llinet-build split --preset gzsl`)")
    p.add_argument("--gzsl-train-per-class", type=int, default=d.gzsl_train_per_class,
                   help="without a seen-class validation split: train clips per seen class used instead "
                        "(0 = no GZSL; default %(default)s)")
    p.add_argument("--gzsl-exclude-own", action="store_true", help="leave each image's own clip out of prototypes")
    p.add_argument("--masks", help="COCO annotation JSON with the test masks (llinet-build annotate)")
    p.add_argument("--no-localization", action="store_true", help="skip localisation (no masks needed)")
    p.add_argument("--report", required=True, help="output folder for the report")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N (default %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers, help="media decoding workers (default %(default)s)")
    p.add_argument("--skip-bad", action="store_true", help="drop clips whose media cannot be decoded")
    p.add_argument("--draws", type=int, default=d.draws,
                   help="random query draws for the LLINet-mAP spread (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--overlays", type=int, default=d.overlays,
                   help="attention-map overlays to draw (default %(default)s)")
    p.add_argument("--no-progress", action="store_true")
    return p


def options_from_args(args: argparse.Namespace) -> EvalOptions:
    """The parsed command line as EvalOptions (--no-X flags become X=False)."""
    given = vars(args)
    values = {f.name: given[f.name] for f in fields(EvalOptions) if f.name in given}
    values["localization"] = not given.get("no_localization", False)
    values["progress"] = not given.get("no_progress", False)
    return EvalOptions(**values)


def run(args: argparse.Namespace) -> int:
    result = evaluate(options_from_args(args))
    print(result.summary())
    print(f"report: {result.files['report']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
