"""One optimisation step and the numeric settings around it (shared by
``llinet-train`` and ``bench/train_throughput.py``)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from model.methods.base import Method
from model.network.inputs import normalise_images
from model.network.llinet import LLINet
from model.network.loss import LLINetLoss
from model.training.distributed import DistInfo, gather_with_grad_local

PRECISIONS = ("fp32", "tf32", "bf16")


def configure_precision(precision: str, deterministic: bool = False) -> None:
    """fp32: strict IEEE fp32 matmuls/convs; tf32 and bf16 allow TF32 on Ampere+ GPUs."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    allow_tf32 = precision in ("tf32", "bf16")
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def build_optimizer(model: LLINet | Method, lr: float, momentum: float, weight_decay: float,
                    decay_every: int, decay_factor: float, halving_offset: int = 0
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """SGD over the image / audio / transform groups (and a method's 'heads'); only the image lr
    decays (per epoch).

    The image lr of 0-based epoch e is lr · factor^((e + halving_offset) // decay_every):
    offset 0 first decays at 1-based epoch decay_every + 1 (11, 21, ...), offset 1 at
    decay_every (10, 20, ..., the authors' code).
    """
    groups = model.parameter_groups()
    names = ["image", "audio", "transform", *(name for name in groups if name not in ("image", "audio", "transform"))]
    optimizer = torch.optim.SGD(
        [{"params": groups[name], "name": name} for name in names],
        lr=lr, momentum=momentum, weight_decay=weight_decay)

    def image_factor(epoch: int) -> float:
        return decay_factor ** ((epoch + halving_offset) // decay_every) if decay_every > 0 else 1.0

    def constant(epoch: int) -> float:
        return 1.0

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, [image_factor, *(constant for _ in names[1:])])
    return optimizer, scheduler


class TrainStep:
    """Move a batch to the device, forward, gather across ranks, loss, backward, SGD step.

    With ``method`` (a :class:`~model.methods.base.Method`; ``model`` is then the method or its
    DDP wrapper) the loss is the method's, over its ``gathered`` outputs; without, LLINet's
    ``criterion`` on (v, a, v̂, ā).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, criterion: LLINetLoss | None,
                 device: torch.device, sample_rate: int, precision: str = "fp32",
                 channels_last: bool = False, dist_info: DistInfo = DistInfo(), method: Method | None = None) -> None:
        self.model, self.optimizer, self.criterion, self.method = model, optimizer, criterion, method
        self.device, self.sample_rate, self.precision = device, sample_rate, precision
        self.channels_last, self.dist_info = channels_last, dist_info

    def to_device(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        non_blocking = self.device.type == "cuda"
        images = batch["images"].to(self.device, non_blocking=non_blocking)
        waves = batch["waves"].to(self.device, non_blocking=non_blocking)
        labels = batch["labels"].to(self.device, non_blocking=non_blocking)
        images = normalise_images(images)  # uint8 travels (4x less than float), normalised here
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, waves, labels

    def lengths(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """Samples of each clip before padding; None for batches without them (every clip full length)."""
        lengths = batch.get("lengths")
        return None if lengths is None else lengths.to(self.device, non_blocking=self.device.type == "cuda")

    def __call__(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, waves, labels = self.to_device(batch)
        with autocast(self.precision, self.device):
            out = self.model(images, waves, self.sample_rate, lengths=self.lengths(batch))
        total, parts = self.loss(out, labels)
        self.optimizer.zero_grad(set_to_none=True)
        (total * self.dist_info.world_size).backward()
        self.optimizer.step()
        return total.detach(), parts

    def loss(self, out: dict[str, Any], labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        info = self.dist_info
        if self.method is not None:
            gathered = {name: gather_with_grad_local(out[name].float(), info) for name in self.method.gathered}
            return self.method.loss(gathered, gather_with_grad_local(labels, info))
        if self.criterion is None:
            raise ValueError("TrainStep needs a criterion or a method")
        return self.criterion(
            gather_with_grad_local(out["v"].float(), info), gather_with_grad_local(out["a"].float(), info),
            gather_with_grad_local(out["v_hat"].float(), info), gather_with_grad_local(out["a_bar"].float(), info),
            gather_with_grad_local(labels, info))
