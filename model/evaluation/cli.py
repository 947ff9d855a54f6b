"""``llinet-eval``: zero-shot retrieval, recognition and localisation metrics + report.

    llinet-eval --checkpoint runs/x/best.pt --manifest M.csv --split test \\
                --masks annotations.json --report reports/x

writes ``metrics.json``, ``report.md``, PNG figures and ``embeddings.npz``
(rerun the metrics without the model: ``--embeddings reports/x/embeddings.npz``).
Bad input is printed without a traceback (exit 2). See model/evaluation/report.py for
what each number means.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from builder import __version__
from builder.errors import InputError, LlinetError
from model.evaluation.embed import EmbeddingSet, extract_embeddings, load_embeddings, save_embeddings
from model.evaluation.pipeline import EvalInputs, compute_metrics
from model.evaluation.metrics.masks import decode_coco_masks
from model.evaluation.report import write_report

TRAIN_SAMPLE = "train_sample"   # seen-class clips for GZSL calibration (name inside embeddings.npz)
UNSEEN_SPLITS = ("test", "val_unseen")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llinet-eval", description=__doc__.splitlines()[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="llinet-train checkpoint (.pt, loaded weights-only)")
    source.add_argument("--embeddings", help="embeddings.npz from an earlier llinet-eval run (no model)")
    p.add_argument("--manifest", help="manifest with clip_id, class, split, audio_path, frame_path "
                                      "(required with --checkpoint)")
    p.add_argument("--media-root", help="folder relative media paths start from (default: the manifest's)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--val-split", default="val_unseen",
                   help="validation split: chooses localisation k and the GZSL constant (default: val_unseen)")
    p.add_argument("--seen-split", default="test_seen", help="seen-class test split for GZSL (default: test_seen)")
    p.add_argument("--seen-val-split", default="val_seen",
                   help="seen-class validation split for GZSL calibration (default: val_seen, from "
                        "`llinet-build split --preset gzsl`)")
    p.add_argument("--gzsl-train-per-class", type=int, default=10,
                   help="without a seen-class validation split: train clips per seen class used instead "
                        "(0 = no GZSL; default 10)")
    p.add_argument("--gzsl-exclude-own", action="store_true", help="leave each image's own clip out of prototypes")
    p.add_argument("--masks", help="COCO annotation JSON with the test masks (llinet-build annotate)")
    p.add_argument("--no-localization", action="store_true", help="skip localisation (no masks needed)")
    p.add_argument("--report", required=True, help="output folder for the report")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--workers", type=int, default=2, help="media decoding workers")
    p.add_argument("--skip-bad", action="store_true", help="drop clips whose media cannot be decoded")
    p.add_argument("--draws", type=int, default=1000, help="random query draws for the LLINet-mAP spread")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overlays", type=int, default=12, help="attention-map overlays to draw")
    p.add_argument("--no-progress", action="store_true")
    return p


def load_model(path: str, device: torch.device) -> tuple[Any, Any, dict[str, Any]]:
    """Model, config and checkpoint state; weights that do not fit the config are an InputError."""
    from model.network.checkpoint import load_checkpoint
    from model.network.config import ModelConfig
    from model.network.factory import build_model

    state = load_checkpoint(path)
    try:
        config = ModelConfig.from_dict(dict(state["config"]))
    except (TypeError, ValueError) as exc:
        raise InputError(f"checkpoint config is not an LLINet ModelConfig: {exc}", file=path,
                         field="config") from exc
    model = build_model(ModelConfig.from_dict({**config.to_dict(), "image_weights": "none"}))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:4]
        raise InputError(f"checkpoint weights do not fit its config (backbone {config.backbone}, "
                         f"image size {config.image_size}); was it written by another model version "
                         f"or edited? {' '.join(first)}", file=path, field="model") from exc
    return model.to(device).eval(), config, state


def _check_zero_shot(manifest: pd.DataFrame, split: str, path: str) -> None:
    if split not in UNSEEN_SPLITS or "train" not in set(manifest["split"]):
        return
    shared = set(manifest.loc[manifest["split"] == split, "class"]) & set(
        manifest.loc[manifest["split"] == "train", "class"])
    if shared:
        raise InputError(f"class(es) {sorted(shared)} are in both 'train' and {split!r}: "
                         "not a zero-shot split", file=path, field="split")


def _rows(manifest: pd.DataFrame, split: str) -> pd.DataFrame:
    return manifest[manifest["split"] == split].reset_index(drop=True)


def _train_sample(manifest: pd.DataFrame, per_class: int) -> pd.DataFrame:
    """First ``per_class`` train clips of every class, manifest order (deterministic)."""
    rows = _rows(manifest, "train")
    return rows.groupby("class", sort=False).head(per_class).reset_index(drop=True)


def _audio_format(state: dict[str, Any], rows: pd.DataFrame) -> tuple[int, int]:
    from model.network.inputs import MediaError, load_waveform

    options = state.get("train_options") or {}
    rate = state.get("sample_rate") or options.get("sample_rate")
    seconds = options.get("clip_seconds")
    if rate and seconds:
        return int(rate), int(round(seconds * rate))
    for path in rows["audio_path"]:
        try:
            wave, native = load_waveform(path)
        except MediaError:
            continue
        rate = int(rate or native)
        return rate, int(round((seconds or wave.shape[1] / native) * rate))
    raise InputError("no decodable audio file to take the clip length from")


def _check_mask_coverage(masks: dict[str, Any] | None, clip_ids: Any, split: str, path: str) -> None:
    if masks is not None and not any(str(c) in masks for c in clip_ids):
        raise InputError(f"the masks file has no mask for any of the {len(clip_ids)} {split!r} clips "
                         f"(e.g. {clip_ids[0]}); is it the annotation file of this manifest?", file=path)


def embed_from_checkpoint(args: argparse.Namespace, masks: dict[str, Any] | None) -> dict[str, EmbeddingSet]:
    from model.training.data import read_media_manifest

    if not args.manifest:
        raise InputError("--manifest is required with --checkpoint")
    manifest = read_media_manifest(args.manifest, args.media_root)
    counts = manifest["split"].value_counts().to_dict()
    if counts.get(args.split, 0) == 0:
        raise InputError(f"split {args.split!r} is empty; splits present: "
                         f"{ {str(k): int(v) for k, v in counts.items()} }", file=args.manifest, field="split")
    _check_zero_shot(manifest, args.split, args.manifest)
    _check_mask_coverage(masks, _rows(manifest, args.split)["clip_id"].tolist(), args.split, args.masks)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    model, config, state = load_model(args.checkpoint, device)
    wanted = {args.split: _rows(manifest, args.split)}
    if args.val_split != args.split and counts.get(args.val_split, 0):
        wanted[args.val_split] = _rows(manifest, args.val_split)
    if args.gzsl_train_per_class > 0 and counts.get(args.seen_split, 0):
        wanted[args.seen_split] = _rows(manifest, args.seen_split)
        # Prefer the gzsl preset's held-out seen-class validation clips; older manifests have none,
        # then fall back to a fixed sample of train clips (the report names which was used).
        if counts.get(args.seen_val_split, 0):
            wanted[args.seen_val_split] = _rows(manifest, args.seen_val_split)
        else:
            wanted[TRAIN_SAMPLE] = _train_sample(manifest, args.gzsl_train_per_class)
    # Same rule as the trainer: the checkpoint's options, else the first train clip's format.
    train_rows = _rows(manifest, "train")
    rate, samples = _audio_format(state, train_rows if len(train_rows) else wanted[args.split])
    sets = {}
    for name, rows in wanted.items():
        if len(rows):
            sets[name] = extract_embeddings(model, rows, name, image_size=config.image_size,
                                            sample_rate=rate, clip_samples=samples,
                                            batch_size=args.batch_size, device=device,
                                            workers=args.workers, progress=not args.no_progress,
                                            skip_bad=args.skip_bad)
    return sets


def run(args: argparse.Namespace) -> int:
    masks = None
    if not args.no_localization:
        if not args.masks:
            raise InputError("no segmentation masks: pass --masks ANNOTATIONS.json (COCO, from "
                             "llinet-build annotate) or --no-localization")
        masks = decode_coco_masks(args.masks)  # read first: a bad file fails before the slow part
    if args.embeddings:
        sets = load_embeddings(args.embeddings)
        if args.split not in sets or len(sets[args.split]) == 0:
            raise InputError(f"split {args.split!r} not in the embeddings (has {sorted(sets)})",
                             file=args.embeddings)
    else:
        sets = embed_from_checkpoint(args, masks)
    test = sets[args.split]
    _check_mask_coverage(masks, test.clip_ids, args.split, args.masks)
    report = Path(args.report)
    context = {"llinet_version": __version__,
               "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "source": args.checkpoint or args.embeddings, "manifest": args.manifest,
               "masks": args.masks, "split": args.split, "val_split": args.val_split}
    if not args.embeddings:
        save_embeddings(report / "embeddings.npz", sets, meta=context)
    inputs = EvalInputs(test=test, val=sets.get(args.val_split) if args.val_split != args.split else None,
                        seen_test=sets.get(args.seen_split),
                        seen_val=sets.get(args.seen_val_split, sets.get(TRAIN_SAMPLE)), masks=masks)
    try:
        metrics, artefacts = compute_metrics(inputs, n_draws=args.draws, seed=args.seed,
                                             gzsl_exclude_own=args.gzsl_exclude_own)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    written = write_report(report, metrics, artefacts, inputs, context, overlays=args.overlays)
    ret = metrics["retrieval"]
    print(f"{args.split}: {metrics['n_clips']} clips, {metrics['n_classes']} classes; LLINet mAP "
          f"image→audio {100 * ret['image_to_audio']['llinet']['map']:.1f} / audio→image "
          f"{100 * ret['audio_to_image']['llinet']['map']:.1f}; zero-shot accuracy "
          f"{100 * metrics['recognition']['published']['accuracy']:.1f}")
    print(f"report: {written['report']}")
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
