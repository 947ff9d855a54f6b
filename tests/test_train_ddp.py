"""DDP on the CPU (gloo, 2 processes): gathered-embedding loss and a torchrun training run."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from builder.demo.zeroshot_set import SyntheticSpec, generate_synthetic_set
from model.network.loss import LLINetLoss
from model.training.distributed import DistInfo, gather_with_grad_local
from support.gloo import free_port, gloo_group

REPO = Path(__file__).resolve().parents[1]
BATCH, WORLD = 8, 2


class _TwoTowers(nn.Module):
    """Stand-in for LLINet's trainable towers: enough to check the gradient maths."""

    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Linear(6, 4)
        self.audio = nn.Linear(5, 4)
        self.transform = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        v, a = self.image(x), self.audio(y)
        a_bar = torch.relu(self.transform(a))
        return v, a, v * 0.5 + a_bar, a_bar


def _inputs():
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(BATCH, 6, generator=generator), torch.randn(BATCH, 5, generator=generator)
    labels = torch.tensor([0, 0, 1, 2, 1, 3, 3, 0])
    return x, y, labels


def _reference_grads() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    model = _TwoTowers()
    x, y, labels = _inputs()
    total, _ = LLINetLoss()(*model(x, y), labels)
    total.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def _worker(rank: int, port: int, out_dir: str) -> None:
    with gloo_group(rank, WORLD, port):
        info = DistInfo(rank=rank, local_rank=rank, world_size=WORLD)
        torch.manual_seed(1)
        model = nn.parallel.DistributedDataParallel(_TwoTowers())
        x, y, labels = _inputs()
        part = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        outputs = model(x[part], y[part])
        gathered = [gather_with_grad_local(t, info) for t in outputs]
        total, _ = LLINetLoss()(*gathered, gather_with_grad_local(labels[part], info))
        (total * WORLD).backward()
        torch.save({name: p.grad for name, p in model.module.named_parameters()},
                   os.path.join(out_dir, f"grads{rank}.pt"))


def test_gathered_loss_gradient_equals_single_process_full_batch(tmp_path) -> None:
    mp.spawn(_worker, args=(free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    reference = _reference_grads()
    for rank in range(WORLD):
        grads = torch.load(tmp_path / f"grads{rank}.pt", weights_only=True)
        for name, grad in reference.items():
            torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-6)


def test_torchrun_two_processes_train_one_epoch(tmp_path) -> None:
    manifest = generate_synthetic_set(tmp_path / "data", SyntheticSpec(n_train_classes=3, per_class=8,
                                                                        seconds=0.3, image_size=56, seed=2))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
               "-m", "model.training.cli", "--manifest", str(manifest), "--out", str(tmp_path / "run"),
               "--backbone", "resnet18", "--image-size", "48", "--image-weights", "none", "--batch-size", "8",
               "--epochs", "1", "--workers", "0", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes, BatchNorm statistics global" in result.stderr      # logged, on stderr
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and torch.isfinite(torch.tensor(checkpoint["history"][0]["train_loss"]))
    assert checkpoint["history"][0]["val_map"] > 0
