"""DDP on the CPU (gloo, 2 processes) for Table 1's methods: heads run in each process's forward,
the loss over outputs gathered across processes, and the gradients of towers and heads equal one
process's on the full batch."""
from __future__ import annotations

import functools
import os

import torch
import torch.multiprocessing as mp
from torch import nn

from model.methods.registry import build_method
from model.network.config import ModelConfig
from model.network.factory import build_model
from model.training.distributed import DistInfo, gather_with_grad_local
from support.gloo import free_port, gloo_group

BATCH, WORLD = 8, 2
# Methods whose parameterised heads act on (v, a); SCAN's projections act on regions and steps the
# same way (per sample, in the forward pass).
METHODS = ("dar", "ulslvc", "dscmr", "timam", "cmpm", "cme")


@functools.cache
def _net():
    """One frozen LLINet for every method (it only sets the heads' sizes here)."""
    net = build_model(ModelConfig(backbone="resnet18", image_size=32, image_weights="none", gamma_att=0.0))
    return net.requires_grad_(False)


class _Towers(nn.Module):
    """Small image/audio towers in front of a method's heads (the encoders' role in training)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        net = _net()
        torch.manual_seed(1)
        self.image, self.audio = nn.Linear(6, 256), nn.Linear(5, 256)
        self.method = build_method(name, net, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.method.heads({"v": self.image(x), "a": self.audio(y)})


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(BATCH, 6, generator=generator), torch.randn(BATCH, 5, generator=generator)
    return x, y, torch.tensor([0, 0, 1, 2, 1, 3, 3, 0])


def _grads(model: _Towers) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _single(name: str) -> dict[str, torch.Tensor]:
    model = _Towers(name)
    x, y, labels = _inputs()
    torch.manual_seed(2)   # the imposter draws of ULSLVC, as in the workers
    total, _ = model.method.loss(model(x, y), labels)
    total.backward()
    return _grads(model)


def _worker(rank: int, port: int, out_dir: str) -> None:
    with gloo_group(rank, WORLD, port):
        info = DistInfo(rank=rank, local_rank=rank, world_size=WORLD)
        for name in METHODS:
            towers = _Towers(name)
            model = nn.parallel.DistributedDataParallel(towers)
            x, y, labels = _inputs()
            part = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
            out = model(x[part], y[part])
            gathered = {key: gather_with_grad_local(out[key], info) for key in towers.method.gathered}
            torch.manual_seed(2)
            total, _ = towers.method.loss(gathered, gather_with_grad_local(labels[part], info))
            (total * WORLD).backward()
            torch.save(_grads(towers), os.path.join(out_dir, f"{name}{rank}.pt"))


def test_method_gradients_under_ddp_equal_one_process(tmp_path) -> None:
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for name in METHODS:
        reference = _single(name)
        assert any(key.startswith("method.") for key in reference) or name == "ulslvc", name   # heads got gradient
        for rank in range(WORLD):
            grads = torch.load(tmp_path / f"{name}{rank}.pt", weights_only=True)
            assert set(grads) == set(reference), name
            for key, grad in reference.items():
                torch.testing.assert_close(grads[key], grad, rtol=1e-4, atol=1e-6, msg=f"{name} {key}")
