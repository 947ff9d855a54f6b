"""BatchNorm2d whose batch statistics span every DDP rank (the single-GPU recipe under torchrun).

Under DDP each rank sees batch/world samples, so a plain BatchNorm2d normalises
with per-rank statistics and updates its running statistics from them: a DDP
run is then not the published single-GPU recipe (in the authors' code even the
frozen backbone's BN stays in train mode and uses batch statistics). :class:`GlobalBatchNorm2d` sums
the per-channel statistics over the process group so every rank normalises
with the statistics of the whole global batch. ``torch.nn.SyncBatchNorm``
does the same but refuses CPU tensors, so it cannot run (or be tested) with
gloo; this one works on any device and backend.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_autograd
from torch import nn


def _world_size(process_group: dist.ProcessGroup | None) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(process_group)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with cross-rank batch statistics; same parameters, buffers and state_dict keys.

    Alone (no process group, or world size 1) or when using running statistics
    it is exactly ``nn.BatchNorm2d``. Requirements when synchronising (as for
    SyncBatchNorm): every rank of the group calls every such layer in the same
    order with a non-empty input, and, when grad is enabled, every rank
    backpropagates through it (the backward all-reduces the statistics' gradient).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: dist.ProcessGroup | None = None,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group  # None = the default group

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # "input": nn.BatchNorm2d.forward's argument name
        uses_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        if not uses_batch_stats or _world_size(self.process_group) == 1:
            return super().forward(input)
        self._check_input_dim(input)
        factor = self._running_update_factor()
        mean, var, count = self._global_mean_var(input)
        if (self.training and self.track_running_stats and self.running_mean is not None
                and self.running_var is not None):  # BatchNorm registers both or neither
            with torch.no_grad():
                # As nn.BatchNorm2d: running = (1 - f) * running + f * batch stat, variance unbiased.
                unbiased = var.detach() * (count / (count - 1))
                self.running_mean.mul_(1.0 - factor).add_(mean.detach().to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1.0 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        shape = (1, -1, 1, 1)
        scale = torch.rsqrt(var + self.eps)
        if self.weight is not None:
            scale = scale * self.weight
        # (x - mean) * scale rather than x * scale + shift: no cancellation when |mean| >> std.
        output = (input.to(mean.dtype) - mean.view(shape)) * scale.view(shape)
        if self.bias is not None:
            output = output + self.bias.view(shape)
        # batch_norm has no autocast rule (CPU or CUDA): its output keeps the input's dtype
        # (bf16 in -> bf16 out, statistics in fp32 inside); match that.
        return output.to(input.dtype)

    def _running_update_factor(self) -> float:
        """Exponential-average factor, incrementing num_batches_tracked exactly as nn.BatchNorm2d does."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            # momentum=None: cumulative moving average over the batches seen.
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        return factor

    def _global_mean_var(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, biased variance) per channel over all ranks' inputs, and the global count per channel.

        Numerics: each rank first takes its own mean and centred variance
        (torch.var_mean, stable). Only the combination E[x^2] - mean^2 across
        ranks can cancel (badly when |mean| >> std, e.g. log-mel inputs near
        log(1e-6)); it is done in float64 on the packed [count, sum, sum of
        squares] (2C+1 values, negligible cost), which keeps the combined
        variance as accurate as the per-rank ones. One all-reduce per layer.
        """
        stat_dtype = torch.promote_types(input.dtype, torch.float32)  # fp32 stats for bf16/fp16 inputs
        local_var, local_mean = torch.var_mean(input.to(stat_dtype), dim=(0, 2, 3), correction=0)
        count = input.numel() // input.shape[1]
        mean64, var64 = local_mean.double(), local_var.double()
        packed = torch.cat([mean64.new_full((1,), float(count)), mean64 * count, (var64 + mean64 * mean64) * count])
        if torch.is_grad_enabled():
            # Autograd-aware: its backward all-reduces the gradient, so each rank's loss reaches every
            # rank's inputs through the shared statistics (what one process on the full batch computes).
            group = dist.group.WORLD if self.process_group is None else self.process_group
            packed = dist_autograd.all_reduce(packed, group=group)
        else:
            dist.all_reduce(packed, group=self.process_group)  # in place: packed is a fresh tensor
        total, sums, squares = packed[0], packed[1:1 + self.num_features], packed[1 + self.num_features:]
        mean = sums / total
        var = torch.clamp(squares / total - mean * mean, min=0.0)
        return mean.to(stat_dtype), var.to(stat_dtype), total.to(stat_dtype)


def convert_to_global_bn(module: nn.Module, process_group: dist.ProcessGroup | None = None) -> nn.Module:
    """Replace every plain nn.BatchNorm2d in ``module`` (recursively, in place) by a GlobalBatchNorm2d.

    The new layers share the old ones' Parameter objects (so an optimiser built
    before the conversion still updates them, and requires_grad flags, device
    and dtype carry over) and buffers, and copy eps, momentum, affine,
    track_running_stats and the training flag. Only exact nn.BatchNorm2d is
    replaced: a subclass may carry behaviour a GlobalBatchNorm2d would drop.
    Returns ``module``, or the replacement if ``module`` itself is a BatchNorm2d.
    """
    if type(module) is nn.BatchNorm2d:
        return _to_global(module, process_group)
    for name, child in module.named_children():
        replacement = convert_to_global_bn(child, process_group)
        if replacement is not child:
            setattr(module, name, replacement)
    return module


def _to_global(bn: nn.BatchNorm2d, process_group: dist.ProcessGroup | None) -> GlobalBatchNorm2d:
    # Built on the meta device (nothing allocated); every tensor is then the old layer's own.
    new = GlobalBatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats,
                            process_group, device="meta")
    for name in ("weight", "bias"):
        setattr(new, name, getattr(bn, name))  # a Parameter, or None when affine=False
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        setattr(new, name, getattr(bn, name))  # registered buffer (or None when not tracking)
    new.train(bn.training)
    return new
