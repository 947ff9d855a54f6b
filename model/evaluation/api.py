"""Evaluation from Python: :func:`evaluate` does what ``llinet-eval`` does, from an :class:`EvalOptions`.

    from model.evaluation.api import EvalOptions, evaluate

    result = evaluate(EvalOptions(checkpoint="runs/x/best.pt", manifest="manifest.csv",
                                  masks="annotations.json", report="reports/x"))
    result.metrics["retrieval"]["image_to_audio"]["llinet"]["map"]

The report folder receives ``metrics.json``, ``report.md``, the PNG figures and
(from a checkpoint) ``embeddings.npz``; ``EvalResult.metrics`` is the content of
``metrics.json`` without its ``context`` block. Bad input raises
:class:`builder.errors.InputError` (the message names the file and field).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from builder import __version__
from builder.errors import InputError
from model.evaluation.embed import EmbeddingSet, extract_embeddings, load_embeddings, save_embeddings
from model.evaluation.metrics.masks import decode_coco_masks
from model.evaluation.pipeline import EvalInputs, compute_metrics
from model.evaluation.report import write_report

TRAIN_SAMPLE = "train_sample"   # seen-class clips for GZSL calibration (name inside embeddings.npz)
UNSEEN_SPLITS = ("test", "val_unseen")
TEST_SPLITS = ("test", "test_seen")   # never chosen on (k, GZSL constant)
PathLike = str | os.PathLike[str]


@dataclass
class EvalOptions:
    """What to evaluate and how; the defaults are ``llinet-eval``'s."""

    report: PathLike = ""                  # output folder (required)
    checkpoint: PathLike | None = None     # llinet-train checkpoint; exactly one of checkpoint / embeddings
    embeddings: PathLike | None = None     # embeddings.npz of an earlier run (no model needed)
    manifest: PathLike | None = None       # clip_id, class, split, audio_path, frame_path (with checkpoint)
    media_root: PathLike | None = None     # relative media paths start here (default: the manifest's folder)
    split: str = "test"
    val_split: str = "val_unseen"          # chooses localisation k and the GZSL constant
    seen_split: str = "test_seen"          # seen-class test clips for GZSL
    seen_val_split: str = "val_seen"       # seen-class validation clips for GZSL calibration
    gzsl_train_per_class: int = 10         # without seen_val_split: train clips per seen class instead (0: no GZSL)
    gzsl_exclude_own: bool = False         # leave each image's own clip out of the prototypes
    masks: PathLike | None = None          # COCO annotation JSON with the test masks
    localization: bool = True              # False: skip localisation (no masks needed)
    batch_size: int = 32
    # The authors' evaluation, opt-in: their test loader drops the clips after the last complete batch
    # (11 of INSTRUMENT-32's 747 test clips at batch 32); their IoU divides by union + 1e-5.
    drop_last_batch: bool = False          # leave out the evaluated split's clips after its last full batch
    iou_epsilon: float = 0.0               # LLINet localisation IoU = inter / (union + iou_epsilon); official 1e-5
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    workers: int = 2                       # media decoding workers
    skip_bad: bool = False                 # drop clips whose media cannot be decoded
    draws: int = 1000                      # random query draws for the LLINet-mAP spread
    seed: int = 0
    overlays: int = 12                     # attention-map overlays to draw
    progress: bool = True

    def check(self) -> None:
        """Raise InputError for options no run could use (the CLI's parser catches most earlier)."""
        if bool(self.checkpoint) == bool(self.embeddings):
            raise InputError("give exactly one of checkpoint (a model) or embeddings (an earlier run's "
                             "embeddings.npz)", field="checkpoint")
        if not str(self.report):
            raise InputError("no report folder given", field="report")
        for name in ("batch_size", "draws"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}", field=name)
        for name in ("workers", "overlays", "gzsl_train_per_class", "iou_epsilon"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}", field=name)
        for name in ("val_split", "seen_val_split"):
            if getattr(self, name) in TEST_SPLITS:
                raise InputError(f"{name} {getattr(self, name)!r} is a test split: k and the GZSL constant "
                                 "are chosen on validation data", field=name)


@dataclass
class EvalResult:
    metrics: dict[str, Any]               # metrics.json without "context"
    context: dict[str, Any]               # version, date, inputs (metrics.json "context")
    report_dir: Path
    files: dict[str, Path] = field(default_factory=dict)   # "report", "metrics", figures, "embeddings"

    def summary(self) -> str:
        """One line: clips, classes, LLINet mAP both ways, zero-shot accuracy."""
        ret = self.metrics["retrieval"]
        return (f"{self.context['split']}: {self.metrics['n_clips']} clips, {self.metrics['n_classes']} "
                f"classes; LLINet mAP image→audio {100 * ret['image_to_audio']['llinet']['map']:.1f} / "
                f"audio→image {100 * ret['audio_to_image']['llinet']['map']:.1f}; zero-shot accuracy "
                f"{100 * self.metrics['recognition']['published']['accuracy']:.1f}")


def load_model(path: PathLike, device: torch.device) -> tuple[Any, Any, dict[str, Any]]:
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
    from model.methods.registry import restore_method

    # A Table 1 baseline embeds through its own heads (LLINet checkpoints have none).
    return restore_method(model.to(device).eval(), state.get("method")), config, state


def _check_zero_shot(manifest: pd.DataFrame, split: str, path: PathLike) -> None:
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


def _check_mask_coverage(masks: dict[str, Any] | None, clip_ids: Any, split: str, path: PathLike | None) -> None:
    if masks is not None and not any(str(c) in masks for c in clip_ids):
        raise InputError(f"the masks file has no mask for any of the {len(clip_ids)} {split!r} clips "
                         f"(e.g. {clip_ids[0]}); is it the annotation file of this manifest?", file=path)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_info(state: dict[str, Any]) -> dict[str, Any]:
    """Which method, training seed and recipe made a checkpoint (for reports that compare runs)."""
    options = state.get("train_options") or {}
    return {"method": str((state.get("method") or {}).get("name", "llinet")), "train_seed": options.get("seed"),
            "recipe": options.get("recipe")}


def _embeddings_run_info(path: PathLike) -> dict[str, Any]:
    """The run fields an earlier llinet-eval stored in its embeddings.npz (None where absent)."""
    with np.load(path, allow_pickle=False) as data:
        meta = (dict(zip(data["__meta_keys__"].tolist(), data["__meta_values__"].tolist(), strict=True))
                if "__meta_keys__" in data.files else {})
    values = {key: meta.get(key) for key in ("method", "train_seed", "recipe")}
    seed = values["train_seed"]
    values["train_seed"] = int(seed) if seed not in (None, "None") else None
    return values


def embed_from_checkpoint(options: EvalOptions, masks: dict[str, Any] | None,
                          run: dict[str, Any] | None = None) -> dict[str, EmbeddingSet]:
    """Embeddings of every split the metrics use: the evaluated one, its validation split, GZSL's.
    ``run`` (if given) receives :func:`run_info` of the checkpoint."""
    from model.training.data import read_media_manifest

    o = options
    if not o.checkpoint:
        raise InputError("no checkpoint given", field="checkpoint")
    if not o.manifest:
        raise InputError("a manifest is required with a checkpoint (--manifest)", field="manifest")
    manifest = read_media_manifest(o.manifest, o.media_root)
    counts = manifest["split"].value_counts().to_dict()
    if counts.get(o.split, 0) == 0:
        raise InputError(f"split {o.split!r} is empty; splits present: "
                         f"{ {str(k): int(v) for k, v in counts.items()} }", file=o.manifest, field="split")
    _check_zero_shot(manifest, o.split, o.manifest)
    _check_mask_coverage(masks, _rows(manifest, o.split)["clip_id"].tolist(), o.split, o.masks)
    device = _device(o.device)
    model, config, state = load_model(o.checkpoint, device)
    if run is not None:
        run.update(run_info(state))
    wanted = {o.split: _rows(manifest, o.split)}
    if o.val_split != o.split and counts.get(o.val_split, 0):
        wanted[o.val_split] = _rows(manifest, o.val_split)
    if o.gzsl_train_per_class > 0 and counts.get(o.seen_split, 0):
        wanted[o.seen_split] = _rows(manifest, o.seen_split)
        # Prefer the gzsl preset's held-out seen-class validation clips; older manifests have none,
        # then fall back to a fixed sample of train clips (the report names which was used).
        if counts.get(o.seen_val_split, 0):
            wanted[o.seen_val_split] = _rows(manifest, o.seen_val_split)
        else:
            wanted[TRAIN_SAMPLE] = _train_sample(manifest, o.gzsl_train_per_class)
    # Same rule as the trainer: the checkpoint's options, else the first train clip's format.
    train_rows = _rows(manifest, "train")
    rate, samples = _audio_format(state, train_rows if len(train_rows) else wanted[o.split])
    sets = {}
    for name, rows in wanted.items():
        if len(rows):
            sets[name] = extract_embeddings(model, rows, name, image_size=config.image_size,
                                            sample_rate=rate, clip_samples=samples,
                                            batch_size=o.batch_size, device=device,
                                            workers=o.workers, progress=o.progress, skip_bad=o.skip_bad)
    return sets


def _text(path: PathLike | None) -> str | None:
    return None if path is None else str(path)


def evaluate(options: EvalOptions) -> EvalResult:
    """Embed (or load embeddings), compute every metric and write the report; see the module docstring."""
    o = options
    o.check()
    masks = None
    if o.localization:
        if not o.masks:
            raise InputError("no segmentation masks: pass --masks ANNOTATIONS.json (COCO, from "
                             "llinet-build annotate) or --no-localization", field="masks")
        masks = decode_coco_masks(o.masks)  # read first: a bad file fails before the slow part
    run: dict[str, Any] = {}
    if o.embeddings:
        sets = load_embeddings(o.embeddings)
        if o.split not in sets or len(sets[o.split]) == 0:
            raise InputError(f"split {o.split!r} not in the embeddings (has {sorted(sets)})", file=o.embeddings)
        run = _embeddings_run_info(o.embeddings)
    else:
        sets = embed_from_checkpoint(o, masks, run)
    test = sets[o.split]
    dropped = 0
    if o.drop_last_batch:
        # Batches are formed in manifest order, so these are the clips of the last, partial batch.
        kept = len(test) // o.batch_size * o.batch_size
        if kept == 0:
            raise InputError(f"drop_last_batch: split {o.split!r} has {len(test)} clips, fewer than one batch "
                             f"of {o.batch_size}", field="drop_last_batch")
        dropped, test = len(test) - kept, test.subset(np.arange(kept))
    _check_mask_coverage(masks, test.clip_ids, o.split, o.masks)
    report = Path(o.report)
    context = {"llinet_version": __version__,
               "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "source": _text(o.checkpoint or o.embeddings), "manifest": _text(o.manifest),
               "masks": _text(o.masks), "split": o.split, "val_split": o.val_split,
               "drop_last_batch": o.drop_last_batch, "dropped_clips": dropped, "iou_epsilon": o.iou_epsilon,
               **run}
    files: dict[str, Path] = {}
    if not o.embeddings:
        files["embeddings"] = report / "embeddings.npz"
        save_embeddings(files["embeddings"], sets, meta=context)
    inputs = EvalInputs(test=test, val=sets.get(o.val_split) if o.val_split != o.split else None,
                        seen_test=sets.get(o.seen_split),
                        seen_val=sets.get(o.seen_val_split, sets.get(TRAIN_SAMPLE)), masks=masks)
    try:
        metrics, artefacts = compute_metrics(inputs, n_draws=o.draws, seed=o.seed,
                                             gzsl_exclude_own=o.gzsl_exclude_own, iou_epsilon=o.iou_epsilon)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    files.update(write_report(report, metrics, artefacts, inputs, context, overlays=o.overlays))
    return EvalResult(metrics=metrics, context=context, report_dir=report, files=files)
