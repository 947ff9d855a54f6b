"""Options of ``llinet-train`` (a dataclass, so checkpoints can record them)."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from builder.cli.args import CommandParser, add_option, add_renamed_positional, require_one_of
from builder.manifest.media_root import MediaRoot
from model.methods.registry import DEFAULT_METHOD, METHOD_NAMES, METHODS
from model.network.config import BACKBONES, GATE_SOFTMAX, LOGMEL_PADS, SHORT_CLIP_PADS, ModelConfig
from model.training.batch_source import PLACEMENTS
from model.training.engine import PRECISIONS
from model.training.recipes import FROM_RECIPE, RECIPES, SCHEDULES, fill_from_recipe, recipe_help

SELECT_METRICS = {"map": "max", "zsl_acc": "max", "loss": "min"}


@dataclass
class TrainOptions:
    manifest: str = ""
    output_dir: str = "runs/llinet"
    # Table 1's methods (model/methods): heads and losses on the same encoders; 'llinet' = the paper's.
    method: str = DEFAULT_METHOD
    media_root: str | None = None
    cache_dir: str | None = None          # default: <output_dir>/cache
    # None (FROM_RECIPE) = the recipe's value (model/training/recipes.py); epochs: the schedule's.
    recipe: str = "paper"                 # 'paper' or 'official-code' (the authors' released code)
    schedule: str = FROM_RECIPE           # 'paper' or 'official' (lr halving epochs, epoch count)
    epochs: int = FROM_RECIPE
    batch_size: int = 32                  # global batch (split over DDP ranks), drop_last
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-3
    lr_decay_every: int = 10              # image lr halves every 10 epochs (published)
    lr_decay_factor: float = 0.5
    seed: int = 200
    pairing: str = "class"                # 'class' (published) or 'instance'
    val_split: str = "val_unseen"
    select_metric: str = "map"
    eval_batch_size: int = 64
    precision: str = "tf32"
    channels_last: bool = False
    compile: bool = False
    workers: int = 4
    bn_sync: str = "global"               # DDP: BN batch statistics over all ranks (= one GPU) or per rank
    data_placement: str = "auto"          # where batches are cut: device | host | auto (model/training/batch_source.py)
    device: str = "auto"
    sample_rate: int | None = None        # default: the first train clip's rate
    clip_seconds: float | None = None     # default: the first train clip's length
    skip_bad: bool = False
    resume: bool = False
    deterministic: bool = False
    progress: bool = True
    log_every: int = 20
    max_steps_per_epoch: int | None = None
    # Model (ModelConfig) fields.
    backbone: str = "resnet101"
    image_size: int = 244
    image_weights: str = "imagenet"
    frozen_bn: bool = False
    gamma_match: float = 10.0
    gamma_att: float = FROM_RECIPE
    gate_softmax: str = FROM_RECIPE
    logmel_pad: str = FROM_RECIPE
    short_clip_pad: str = FROM_RECIPE

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHOD_NAMES}, got {self.method!r}")
        if self.method != DEFAULT_METHOD:
            # ā and the attention loss are LLINet's: a baseline trains without them (ā frozen).
            if self.gamma_att not in (None, 0.0):
                raise ValueError(f"--gamma-att {self.gamma_att}: the attention loss is LLINet's, "
                                 f"--method {self.method} has none")
            self.gamma_att = 0.0
        fill_from_recipe(self)

    @property
    def lr_halving_offset(self) -> int:
        return SCHEDULES[self.schedule]["lr_halving_offset"]

    def model_config(self) -> ModelConfig:
        return ModelConfig(backbone=self.backbone, image_size=self.image_size, image_weights=self.image_weights,
                           frozen_bn=self.frozen_bn, gamma_match=self.gamma_match, gamma_att=self.gamma_att,
                           gate_softmax=self.gate_softmax, logmel_pad=self.logmel_pad,
                           short_clip_pad=self.short_clip_pad)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def cache_root(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.output_dir) / "cache"


def _manifest_of_root(parser: CommandParser, args: argparse.Namespace) -> None:
    """--root alone is enough: the media root's manifest.csv is the manifest unless --manifest names one."""
    if not args.manifest and args.media_root:
        args.manifest = str(MediaRoot(args.media_root).manifest)


def build_parser() -> CommandParser:
    d = TrainOptions()
    p = CommandParser(
        prog="llinet-train",
        description="Train LLINet (Jia et al., ACM MM 2020) on a manifest with audio_path/frame_path columns. "
                    "Defaults reproduce the published recipe. "
                    "Multi-GPU: torchrun --nproc_per_node N -m model.training.cli ...")
    root = add_option(p, "--root", deprecated=["--media-root"], dest="media_root", metavar="ROOT",
                      help="media root: relative media paths start here and its manifest.csv is the default "
                           "--manifest (without --root, media paths start at the manifest's folder)")
    manifest = p.add_argument("--manifest", metavar="CSV",
                              help="manifest CSV (builder schema + audio_path, frame_path)")
    add_renamed_positional(p, manifest, "MANIFEST")
    require_one_of(p, root, manifest)
    p.after_parse.append(_manifest_of_root)
    add_option(p, "--out", deprecated=["--output-dir"], dest="output_dir", default=d.output_dir, metavar="DIR",
               help="checkpoints, logs, metrics")
    p.add_argument("--cache-dir", metavar="DIR", help="decoded-media cache (default OUT/cache)")
    p.add_argument("--method", choices=METHOD_NAMES, default=d.method,
                   help="llinet (default), or one of the paper's Table 1 baselines trained on the same encoders, "
                        "data and splits (docs/baselines.md); sir cannot be trained: its paper is not identified")
    g = p.add_argument_group("recipe (defaults = published)")
    g.add_argument("--recipe", choices=sorted(RECIPES), default=d.recipe,
                   help="paper: the published method (default); official-code: the authors' released code where "
                        "it differs (image gate softmax, loss, lr schedule, log-mel padding). "
                        "The options marked 'default: from --recipe' override single switches")
    g.add_argument("--schedule", choices=sorted(SCHEDULES),
                   help="paper: image lr halves at 1-based epochs 11, 21, ..., 100 epochs; official: at 10, 20, ..., "
                        f"101 epochs (default: from --recipe; {recipe_help('schedule')})")
    g.add_argument("--epochs", type=int, help="default: the schedule's (paper 100, official 101)")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="global batch; last partial batch dropped")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--momentum", type=float, default=d.momentum)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--lr-decay-every", type=int, default=d.lr_decay_every, help="image lr decay period (epochs)")
    g.add_argument("--lr-decay-factor", type=float, default=d.lr_decay_factor)
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--pairing", choices=("class", "instance"), default=d.pairing,
                   help="class: each image with a random clip of its class (published); instance: its own clip")
    g = p.add_argument_group("model")
    g.add_argument("--backbone", choices=BACKBONES, default=d.backbone)
    g.add_argument("--image-size", type=int, default=d.image_size)
    g.add_argument("--image-weights", default=d.image_weights, help="imagenet | none | PATH")
    g.add_argument("--frozen-bn", action="store_true", help="frozen backbone BN in eval mode (official: train mode)")
    g.add_argument("--bn-sync", choices=("global", "local"), default=d.bn_sync,
                   help="under torchrun: BatchNorm batch statistics over the global batch (default; the published "
                        "single-GPU recipe, one all-reduce per BN layer) or per process (local; faster, a "
                        "different experiment)")
    g.add_argument("--gamma-match", type=float, default=d.gamma_match)
    g.add_argument("--gamma-att", "--attention-loss-weight", dest="gamma_att", type=float,
                   help=f"weight of the attention loss; 0 = matching loss only (default: from --recipe; "
                        f"{recipe_help('gamma_att')})")
    g.add_argument("--gate-softmax", choices=GATE_SOFTMAX,
                   help="image gate softmax of the local features over the positions of each image, or over the "
                        f"batch (default: from --recipe; {recipe_help('gate_softmax')})")
    g.add_argument("--logmel-pad", choices=LOGMEL_PADS,
                   help="STFT edge padding: zeros (librosa >= 0.9) or reflection (librosa < 0.9) "
                        f"(default: from --recipe; {recipe_help('logmel_pad')})")
    g.add_argument("--short-clip-pad", choices=SHORT_CLIP_PADS,
                   help="clips shorter than --clip-seconds: zero samples, or 0.0 log-mel frames after the clip's "
                        f"own frames (default: from --recipe; {recipe_help('short_clip_pad')})")
    g = p.add_argument_group("validation (never the test split)")
    g.add_argument("--val-split", default=d.val_split)
    g.add_argument("--select-metric", choices=sorted(SELECT_METRICS), default=d.select_metric,
                   help="best.pt criterion on validation: map (mean of both directions), zsl_acc, loss")
    g.add_argument("--eval-batch-size", type=int, default=d.eval_batch_size)
    g = p.add_argument_group("speed")
    g.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    g.add_argument("--channels-last", action="store_true")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile both encoders (on a CPU TorchInductor needs a C++ compiler)")
    g.add_argument("--workers", type=int, default=d.workers,
                   help="processes decoding the media cache; DataLoader workers with --data-placement host")
    g.add_argument("--data-placement", choices=PLACEMENTS, default=d.data_placement,
                   help="device: hold the decoded split in device memory and cut batches there (no loader); "
                        "host: DataLoader workers over the memory-mapped cache; auto (default): device when "
                        "the splits fit in 1/4 of the free device memory (RAM on a CPU). Same batches either way")
    g.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N")
    g.add_argument("--deterministic", action="store_true", help="cuDNN deterministic, no autotuning")
    g.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch (smoke tests)")
    g = p.add_argument_group("data")
    g.add_argument("--sample-rate", type=int, help="resample audio to this rate (default: first train clip's)")
    g.add_argument("--clip-seconds", type=float, help="pad/cut audio to this length (default: first train clip's)")
    g.add_argument("--skip-bad", action="store_true", help="drop clips whose wav/jpg fails to decode")
    g = p.add_argument_group("run")
    g.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    g.add_argument("--log-every", type=int, default=d.log_every, help="steps between loss checks/logs")
    return p


def parse_options(argv: list[str] | None = None) -> TrainOptions:
    return parse_command_line(argv)[0]


def parse_command_line(argv: list[str] | None = None) -> tuple[TrainOptions, argparse.Namespace]:
    """The options, and the parsed namespace (for what is not an option of the run, such as -v/-q)."""
    parser = build_parser()
    namespace = parser.parse_args(argv)
    args = vars(namespace)
    for name in ("epochs", "batch_size", "eval_batch_size", "log_every", "image_size"):
        if args[name] is not None and args[name] < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {args[name]}")
    if args["workers"] < 0 or args["lr"] <= 0:
        parser.error("--workers must be >= 0 and --lr > 0")
    known = {f.name for f in fields(TrainOptions)}
    try:
        return TrainOptions(**{k: v for k, v in args.items() if k in known}), namespace
    except ValueError as exc:  # options that contradict each other (e.g. --gamma-att with a baseline)
        parser.error(str(exc))
        raise  # parser.error exits; this line only tells type checkers so
