"""The training loop behind ``llinet-train`` (see model/training/cli.py for the CLI)."""
from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from builder.errors import InputError, LlinetError
from builder.io.atomic import atomic_write_text
from model.methods.base import Method
from model.methods.registry import build_method, check_method, checkpoint_entry
from model.network.checkpoint import load_checkpoint, save_checkpoint
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.network.inputs import MediaError, load_waveform
from model.training.batch_source import choose_placement, planned_batches
from model.training.cache import CacheSpec, open_or_build_cache
from model.training.data import (
    TEST_SPLITS,
    TRAIN_SPLIT,
    SplitData,
    epoch_plan,
    read_media_manifest,
    sequential_plan,
    split_data,
    train_resize_size,
)
from model.training.distributed import DistInfo, barrier, cleanup, init_distributed
from model.training.engine import TrainStep, autocast, build_optimizer, configure_precision
from model.training.global_bn import convert_to_global_bn
from model.training.options import SELECT_METRICS, TrainOptions
from model.training.validation import prototype_accuracy, scores_map

logger = logging.getLogger(__name__)

CSV_FIELDS = ("epoch", "train_loss", "train_match", "train_attention", "lr_image", "lr_audio",
              "samples_per_s", "epoch_seconds", "val_loss", "val_map_i2a", "val_map_a2i", "val_map", "val_zsl_acc")
# Options whose change makes a resumed run a different experiment.
RECIPE_FIELDS = ("manifest", "batch_size", "lr", "momentum", "weight_decay", "lr_decay_every", "lr_decay_factor",
                 "seed", "pairing", "val_split", "precision", "backbone", "image_size", "image_weights",
                 "frozen_bn", "gamma_match", "gamma_att", "sample_rate", "clip_seconds", "max_steps_per_epoch",
                 "bn_sync", "recipe", "schedule", "gate_softmax", "logmel_pad", "short_clip_pad", "method")


class NonFiniteLoss(LlinetError):
    """The loss became NaN/inf; training stopped, the last checkpoint is kept."""


def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def audio_format(frame: Any, opts: TrainOptions) -> tuple[int, int]:
    """(sample rate, clip samples): options, else the first decodable train clip's."""
    rate, samples = opts.sample_rate, None
    if opts.clip_seconds is not None and rate is not None:
        return rate, int(round(opts.clip_seconds * rate))
    for path in frame["audio_path"]:
        try:
            wave, native = load_waveform(path)
        except MediaError:
            continue
        rate = rate or native
        samples = int(round((opts.clip_seconds or wave.shape[1] / native) * rate))
        return rate, samples
    raise InputError("no decodable audio file among the train rows", file=opts.manifest)


def prepare_data(opts: TrainOptions, info: DistInfo) -> tuple[SplitData, SplitData | None, int, int]:
    if opts.val_split in TEST_SPLITS or opts.val_split == TRAIN_SPLIT:
        raise InputError(f"--val-split {opts.val_split!r} refused: model selection must use a validation split")
    manifest = read_media_manifest(opts.manifest, opts.media_root)
    train_rows = manifest[manifest["split"] == TRAIN_SPLIT].reset_index(drop=True)
    val_rows = manifest[manifest["split"] == opts.val_split].reset_index(drop=True)
    if len(train_rows) == 0:
        present = sorted(set(manifest["split"].astype(str)))
        raise InputError(f"no rows with split == {TRAIN_SPLIT!r} to train on (splits present: {present})",
                         file=opts.manifest, field="split")
    rate, samples = audio_format(train_rows, opts)
    size = opts.image_size
    caches = {}
    # Rank 0 decodes; the others wait and then open the finished cache.
    for turn in ((0,) if not info.enabled else (0, 1)):
        if (turn == 0) == info.is_main:
            for name, rows, resized in (("train", train_rows, train_resize_size(size)), ("val", val_rows, size)):
                if len(rows):
                    caches[name] = open_or_build_cache(
                        opts.cache_root, rows["clip_id"].tolist(), rows["audio_path"].tolist(),
                        rows["frame_path"].tolist(), CacheSpec(resized, rate, samples), workers=opts.workers,
                        progress=opts.progress and info.is_main, label=f"{name} media")
        barrier(info)
    shared = sorted(set(train_rows["class"]) & set(val_rows["class"]))
    if shared and info.is_main:
        logger.warning(f"class(es) {shared} are in both train and {opts.val_split!r}: validation is not "
                       "zero-shot for them")
    train = split_data("train", train_rows, caches["train"], opts.skip_bad)
    val = split_data(opts.val_split, val_rows, caches["val"], opts.skip_bad) if "val" in caches else None
    if info.is_main:
        errors = [e for cache in caches.values() for e in cache.errors]
        if errors:
            logger.warning(f"--skip-bad: dropped clips with {len(errors)} bad media file(s); first: {errors[0]}")
        logger.info(f"data: {len(train)} train clips / {len(train.class_names)} classes; "
                    f"{len(val) if val else 0} {opts.val_split} clips; audio {rate} Hz x {samples} samples; "
                    f"{info.world_size} process{'es' if info.enabled else ''}"
                    f"{f', BatchNorm statistics {opts.bn_sync}' if info.enabled else ''}")
    if len(train) < opts.batch_size:
        raise InputError(f"{len(train)} usable train clips < batch size {opts.batch_size}: no complete batch to "
                         "train on (lower --batch-size or add train clips)", file=opts.manifest)
    return train, val, rate, samples


@torch.no_grad()
def evaluate(method: Method, batches: Iterable[dict[str, torch.Tensor]], opts: TrainOptions, device: torch.device,
             sample_rate: int, step: TrainStep) -> dict[str, float]:
    """Validation metrics over every sample of the split (own clip, centre crop): the method's loss
    terms without class logits, its retrieval similarity, prototype accuracy on (v, a)."""
    method.eval()
    parts: dict[str, list[torch.Tensor]] = {"image": [], "audio": [], "v": [], "a": [], "y": []}
    loss_sum = 0.0
    for batch in batches:
        images, waves, y = step.to_device(batch)
        with autocast(opts.precision, device):
            out = method(images, waves, sample_rate, step.lengths(batch))
        loss_sum += float(method.validation_loss({k: value.float() for k, value in out.items()}, y)) * len(y)
        for name, value in (("image", method.image_repr(out)), ("audio", method.audio_repr(out)),
                            ("v", out["v"]), ("a", out["a"]), ("y", y)):
            parts[name].append(value.float().cpu() if value.is_floating_point() else value.cpu())
    kept = {name: torch.cat(values) for name, values in parts.items()}
    y = kept["y"]
    scores = method.pair_scores(kept["image"], kept["audio"])
    i2a, a2i = scores_map(scores, y, y), scores_map(scores.T, y, y)
    return {"val_loss": loss_sum / len(y), "val_map_i2a": i2a, "val_map_a2i": a2i, "val_map": (i2a + a2i) / 2,
            "val_zsl_acc": prototype_accuracy(kept["v"], kept["a"], y, y)}


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def open_tensorboard(path: Path, purge_step: int) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("tensorboard not installed: TensorBoard logs off (metrics.csv still written)")
        return None
    return SummaryWriter(str(path), purge_step=purge_step)


def is_better(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value > best if SELECT_METRICS[metric] == "max" else value < best


def train(opts: TrainOptions) -> int:
    check_method(opts.method)  # an untrainable method (sir) stops here, with the reason
    wants_cuda = opts.device.startswith("cuda") or (opts.device == "auto" and torch.cuda.is_available())
    device_type = "cuda" if wants_cuda else "cpu"
    # Checked before joining the process group, so every rank fails at once instead of waiting.
    check_processes(opts, int(os.environ.get("WORLD_SIZE", "1")))
    info = init_distributed(device_type)
    try:
        return _train(opts, info)
    finally:
        cleanup(info)


def check_processes(opts: TrainOptions, world_size: int) -> None:
    """Refuse what cannot run on ``world_size`` processes (before any process group is joined)."""
    if opts.batch_size % world_size:
        raise InputError(f"--batch-size {opts.batch_size} is not divisible by the {world_size} processes "
                         f"(each takes an equal share of the global batch); use a multiple of {world_size}")
    if world_size > 1 and opts.gate_softmax == "batch":
        raise InputError("--gate-softmax batch (the official-code recipe) normalises over the batch, which under "
                         f"torchrun would be each of the {world_size} processes' share, not the global batch; "
                         "run it in one process")


def resume_state(opts: TrainOptions, last_path: Path) -> dict[str, Any] | None:
    """The checkpoint to continue from (None for a fresh run); refuses to mix two experiments."""
    if not last_path.is_file():
        if opts.resume:
            raise InputError(f"--resume: {last_path} does not exist, so there is nothing to continue "
                             "(check --out, or start the run without --resume)")
        return None
    if not opts.resume:
        raise InputError(f"{last_path} exists: pass --resume to continue, or choose another --out")
    state = load_checkpoint(last_path)
    # An option a checkpoint predates counts as its default.
    saved = {**TrainOptions().to_dict(), **state.get("train_options", {})}
    changed = [f"{k} {saved.get(k)!r} -> {getattr(opts, k)!r}" for k in RECIPE_FIELDS
               if saved.get(k) != getattr(opts, k)]
    if changed:
        raise InputError(f"--resume with changed option(s): {'; '.join(changed)}. A resumed run must be the same "
                         "experiment: give the saved values again, or train into another --out",
                         file=last_path)
    return state


def _train(opts: TrainOptions, info: DistInfo) -> int:
    device = pick_device(opts.device, info)
    configure_precision(opts.precision, opts.deterministic)
    check_processes(opts, info.world_size)
    out = Path(opts.output_dir)
    last_path, best_path = out / "last.pt", out / "best.pt"
    state = resume_state(opts, last_path)
    train_data, val_data, sample_rate, clip_samples = prepare_data(opts, info)

    torch.manual_seed(opts.seed)
    config = ModelConfig.from_dict(state["config"]) if state else opts.model_config()
    if state:
        config = ModelConfig.from_dict({**config.to_dict(), "image_weights": "none"})
    model = build_model(config)
    # The method's heads draw their initial weights after LLINet's: an llinet run is unchanged.
    method = build_method(opts.method, model, len(train_data.class_names))
    if info.enabled and opts.bn_sync == "global":
        # Before .to(), compile and DDP: they capture the module as it is.
        convert_to_global_bn(model)
    model = model.to(device)
    method = method.to(device)
    if opts.channels_last:
        # Module.to accepts memory_format at run time; torch's typed overloads leave it out.
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer, scheduler = build_optimizer(method, opts.lr, opts.momentum, opts.weight_decay,
                                           opts.lr_decay_every, opts.lr_decay_factor, opts.lr_halving_offset)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"metric": opts.select_metric, "value": None, "epoch": None}
    start_epoch = 0
    if state:
        model.load_state_dict(state["model"])
        if "method" in state:
            method.load_head_state(dict(state["method"]["heads"]))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
        history, best, start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"])
        if info.is_main:
            logger.info(f"resumed from {last_path} after epoch {start_epoch}")
    if opts.compile:
        # Compile the encoders in place: state_dict keys stay unchanged and the
        # log-mel (complex STFT, per-rate filterbank cache) stays eager.
        model.image_encoder.compile()
        model.audio_encoder.compile()
    net: Any = method
    if info.enabled:
        net = torch.nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if device.type == "cuda" else None)
    step_fn = TrainStep(net, optimizer, None, device, sample_rate, opts.precision, opts.channels_last, info,
                        method=method)
    crop, resized = opts.image_size, train_resize_size(opts.image_size)
    local_batch = opts.batch_size // info.world_size
    writer = open_tensorboard(out / "tb", start_epoch) if info.is_main else None
    if val_data is None and info.is_main:
        logger.warning(f"no {opts.val_split!r} rows: no validation, no best.pt")

    # One batch stream over the plans of all remaining epochs: loader workers start
    # once and prefetch the next epoch's batches while the current epoch validates.
    plans = []
    for epoch in range(start_epoch, opts.epochs):
        plan = epoch_plan(train_data.labels, epoch=epoch, seed=opts.seed, batch_size=opts.batch_size,
                          pairing=opts.pairing, resized=resized, crop=crop)[:opts.max_steps_per_epoch or None]
        plans.append(plan[:, info.rank * local_batch:(info.rank + 1) * local_batch])
    all_steps = np.concatenate(plans) if plans else np.zeros((0, local_batch, 5), dtype=np.int64)
    placement = choose_placement(opts.data_placement, device, [d for d in (train_data, val_data) if d is not None])
    if info.is_main:
        logger.info(f"batches assembled on the {'device' if placement == 'device' else 'host by DataLoader workers'}"
                    f" (--data-placement {opts.data_placement})")
    batches = iter(planned_batches(train_data, all_steps, crop, placement, device, opts.workers))
    val_batches = None
    if val_data is not None and info.is_main:
        val_batches = planned_batches(val_data, sequential_plan(len(val_data), opts.eval_batch_size, crop, crop),
                                      crop, placement, device, min(opts.workers, 2), persistent=True)

    for epoch, plan in zip(range(start_epoch, opts.epochs), plans, strict=True):
        net.train()
        sums = torch.zeros(3, device=device, dtype=torch.float64)
        checked = torch.zeros(3, dtype=torch.float64)
        started = time.perf_counter()
        bar = tqdm(itertools.islice(batches, len(plan)), total=len(plan), desc=f"epoch {epoch + 1}/{opts.epochs}",
                   unit="step", disable=not (opts.progress and info.is_main), leave=False)
        for step, batch in enumerate(bar):
            loss, parts = step_fn(batch)
            sums += torch.stack([loss, parts["match"], parts["attention"]]).double()
            if (step + 1) % opts.log_every == 0 or step + 1 == len(plan):
                # One host sync per log interval, not per step.
                checked = sums.cpu()
                if not math.isfinite(float(checked[0])):
                    kept = f"{last_path} (after epoch {epoch})" if last_path.is_file() else "no checkpoint yet"
                    raise NonFiniteLoss(f"non-finite loss at epoch {epoch + 1}, step <= {step + 1}; "
                                        f"stopped. Last good checkpoint kept: {kept}. Try a lower --lr.")
                bar.set_postfix(loss=f"{float(checked[0]) / (step + 1):.4f}")
                if writer is not None:
                    writer.add_scalar("train/loss_running", float(checked[0]) / (step + 1), epoch * len(plan) + step)
        seconds = time.perf_counter() - started
        steps = max(len(plan), 1)
        row: dict[str, Any] = {
            "epoch": epoch + 1, "train_loss": float(checked[0]) / steps, "train_match": float(checked[1]) / steps,
            "train_attention": float(checked[2]) / steps,
            "lr_image": optimizer.param_groups[0]["lr"], "lr_audio": optimizer.param_groups[1]["lr"],
            "samples_per_s": len(plan) * opts.batch_size / seconds, "epoch_seconds": seconds}
        scheduler.step()
        improved = False
        if val_batches is not None:
            row.update(evaluate(method, val_batches, opts, device, sample_rate, step_fn))
            value = row["val_map" if opts.select_metric == "map" else f"val_{opts.select_metric}"]
            improved = is_better(value, best["value"], opts.select_metric)
            if improved:
                best = {"metric": opts.select_metric, "value": value, "epoch": epoch + 1}
        history.append(row)
        if info.is_main:
            checkpoint = {"format": 1, "config": config.to_dict(), "model": model.state_dict(), "epoch": epoch + 1,
                          "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                          "rng": rng_state(device), "train_options": opts.to_dict(), "history": history,
                          "best": best, "sample_rate": sample_rate, "clip_samples": clip_samples,
                          "method": checkpoint_entry(method)}
            save_checkpoint(last_path, checkpoint)
            if improved:
                save_checkpoint(best_path, checkpoint)
            write_metrics_csv(out / "metrics.csv", history)
            if writer is not None:
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(f"epoch/{key}", value, epoch + 1)
                writer.flush()
            shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr_audio"))
            logger.info(f"epoch {epoch + 1}/{opts.epochs}: {shown}{' *best*' if improved else ''}")
        barrier(info)
    if writer is not None:
        writer.close()
    return 0
