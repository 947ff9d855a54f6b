"""GlobalBatchNorm2d: plain BN when alone; under gloo (2 processes) it equals one process on the full batch."""
from __future__ import annotations

import copy
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from model.network.config import ModelConfig
from model.network.factory import build_model
from model.network.loss import LLINetLoss
from model.training.distributed import DistInfo
from model.training.engine import TrainStep, build_optimizer
from model.training.global_bn import GlobalBatchNorm2d, convert_to_global_bn
from support.gloo import free_port, gloo_group

WORLD, BATCH, RATE = 2, 8, 16000
LLINET = ModelConfig(backbone="resnet18", image_size=48, image_weights="none")
# (BN momentum, rank 0's share of the batch, explicit process group): momentum None = cumulative average
SMALL_CASES = ((0.1, 4, False), (None, 3, True))


class _SmallNet(nn.Module):
    def __init__(self, momentum: float | None) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=momentum), nn.ReLU())
        self.head = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def _small_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    # Offsets far from zero and different per sample: per-rank statistics would clearly differ.
    offsets = torch.arange(BATCH, dtype=torch.float32).view(-1, 1, 1, 1)
    first, second = (torch.randn(BATCH, 3, 5, 5, generator=generator) * 2 + 3 + offsets for _ in range(2))
    return first, second, torch.randn(BATCH, 3, generator=generator)


def _small_run(momentum: float | None, part: slice, convert: bool,
               group: dist.ProcessGroup | None = None) -> dict[str, torch.Tensor]:
    """Backward on the part of batch 1, no-grad forward on batch 2, eval forward, bf16 autocast forward."""
    torch.manual_seed(0)
    net = _SmallNet(momentum)
    if convert:
        convert_to_global_bn(net, group)
    first, second, target = _small_inputs()
    x = first[part].clone().requires_grad_(True)
    out = net(x)
    ((out ** 2).sum() + (out * target[part]).sum()).backward()  # a sum over samples: grads add over ranks
    result = {"out": out.detach(), "x_grad": x.grad}
    result.update({f"grad.{name}": p.grad for name, p in net.named_parameters()})
    with torch.no_grad():
        result["out_no_grad"] = net(second[part])
        result.update({f"buffer.{name}": b.clone() for name, b in net.named_buffers()})
        net.eval()
        result["out_eval"] = net(first[part])
        net.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            result["bn_bf16"] = net.features[1](net.features[0](first[part]))
    return result


def _llinet_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    # Dark images and quiet audio on rank 0's half, bright and loud on rank 1's: per-rank BN statistics differ.
    images = torch.cat([torch.randint(0, 100, (BATCH // 2, 3, 48, 48), generator=generator),
                        torch.randint(150, 256, (BATCH // 2, 3, 48, 48), generator=generator)]).to(torch.uint8)
    waves = torch.randn(BATCH, 1, 4000, generator=generator) * torch.tensor([0.01] * 4 + [0.5] * 4).view(-1, 1, 1)
    return {"images": images, "waves": waves, "labels": torch.tensor([0, 0, 1, 2, 1, 3, 3, 0])}


def _images_to_float64(module: nn.Module, args: tuple) -> tuple:
    images, waves, sample_rate = args
    return images.double(), waves, sample_rate


def _llinet_step(convert: bool, info: DistInfo, part: slice = slice(None)) -> dict[str, torch.Tensor]:
    """One TrainStep (DDP-wrapped when distributed); state_dict (parameters + BN buffers) and gradients after it.

    The model runs in float64 (hooks cast TrainStep's float32 images and the log-mel features). In float32
    the two runs differ by rounding (~1e-6), and a pre-ReLU value closer to zero than that flips its mask
    and changes the gradients upstream by percent: seen here (a value of 4e-6 in layer4 changed the
    attention layer's gradients by 1%). float64 leaves only what the synchronisation gets right or wrong.
    """
    torch.manual_seed(0)
    model = build_model(LLINET).double()
    model.register_forward_pre_hook(_images_to_float64)
    model.logmel.register_forward_hook(lambda module, args, features: features.double())
    if convert:
        convert_to_global_bn(model)
    net = nn.parallel.DistributedDataParallel(model) if info.enabled else model
    optimizer, _ = build_optimizer(model, lr=0.1, momentum=0.9, weight_decay=1e-3, decay_every=10, decay_factor=0.5)
    step = TrainStep(net, optimizer, LLINetLoss(), torch.device("cpu"), RATE, dist_info=info)
    step({key: value[part] for key, value in _llinet_batch().items()})
    result = {f"state.{name}": value.clone() for name, value in model.state_dict().items()}
    result.update({f"grad.{name}": p.grad for name, p in model.named_parameters() if p.grad is not None})
    return result


def _worker(rank: int, port: int, out_dir: str, scenario: str) -> None:
    torch.set_num_threads(1)
    with gloo_group(rank, WORLD, port):
        results = {}
        if scenario == "small":
            for momentum, share, own_group in SMALL_CASES:
                part = slice(0, share) if rank == 0 else slice(share, BATCH)
                group = dist.new_group(list(range(WORLD))) if own_group else None
                results[str(momentum)] = _small_run(momentum, part, True, group)
        else:
            info, part = DistInfo(rank, rank, WORLD), slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
            results = {"global": _llinet_step(True, info, part), "plain": _llinet_step(False, info, part)}
        torch.save(results, os.path.join(out_dir, f"{scenario}{rank}.pt"))


def _spawn(tmp_path, scenario: str) -> list[dict]:
    mp.spawn(_worker, args=(free_port(), str(tmp_path), scenario), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"{scenario}{rank}.pt", weights_only=True) for rank in range(WORLD)]


def _assert_alone_bit_identical() -> None:
    generator = torch.Generator().manual_seed(1)
    for kwargs in ({}, {"momentum": None}, {"affine": False}, {"track_running_stats": False}):
        plain = nn.BatchNorm2d(3, **kwargs)
        if plain.affine:  # not the default ones/zeros: the affine part must really be applied
            nn.init.uniform_(plain.weight, 0.5, 1.5)
            nn.init.uniform_(plain.bias, -1.0, 1.0)
        glob = convert_to_global_bn(copy.deepcopy(plain))
        assert type(glob) is GlobalBatchNorm2d
        for mode in (True, True, True, False):  # three training steps, then eval
            plain.train(mode), glob.train(mode)
            x = torch.randn(4, 3, 5, 6, generator=generator) * 3 + 2
            assert torch.equal(plain(x), glob(x))
            assert all(torch.equal(a, b)
                       for a, b in zip(plain.state_dict().values(), glob.state_dict().values(), strict=True))


def test_not_initialised_is_bit_identical_to_batchnorm() -> None:
    assert not dist.is_initialized()
    _assert_alone_bit_identical()


def test_world_size_one_is_bit_identical_to_batchnorm() -> None:
    with gloo_group(0, 1, free_port()):
        _assert_alone_bit_identical()


def test_convert_keeps_parameters_buffers_and_flags() -> None:
    torch.manual_seed(0)
    model = build_model(LLINET)
    model.image_encoder.layer4.eval()
    before = {name: (type(m), m.training) for name, m in model.named_modules()}
    params, buffers = dict(model.named_parameters()), dict(model.named_buffers())
    keys = list(model.state_dict())
    assert convert_to_global_bn(model) is model
    for name, module in model.named_modules():
        kind, training = before[name]
        assert type(module) is (GlobalBatchNorm2d if kind is nn.BatchNorm2d else kind), name
        assert module.training == training, name
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert list(model.state_dict()) == keys  # checkpoints interchangeable with plain BN
    assert all(p is params[name] for name, p in model.named_parameters())  # frozen flags kept with them
    assert all(b is buffers[name] for name, b in model.named_buffers())
    lone = nn.BatchNorm2d(2, eps=1e-3, momentum=None, affine=False, dtype=torch.float64)
    converted = convert_to_global_bn(lone)
    assert isinstance(converted, GlobalBatchNorm2d) and converted.running_mean.dtype == torch.float64
    assert (converted.eps, converted.momentum, converted.affine, converted.weight) == (1e-3, None, False, None)


def test_two_processes_equal_one_process_on_full_batch(tmp_path) -> None:
    ranks = _spawn(tmp_path, "small")
    for momentum, _, _ in SMALL_CASES:
        reference = _small_run(momentum, slice(None), convert=False)
        per_rank = [r[str(momentum)] for r in ranks]
        for key in ("out", "x_grad", "out_no_grad", "out_eval", "bn_bf16"):
            joined = torch.cat([r[key] for r in per_rank])
            if key == "bn_bf16":
                assert joined.dtype == reference[key].dtype == torch.bfloat16  # as nn.BatchNorm2d under autocast
                torch.testing.assert_close(joined.float(), reference[key].float(), rtol=1e-2, atol=1e-2)
            else:
                torch.testing.assert_close(joined, reference[key], rtol=1e-5, atol=1e-5, msg=key)
        for key, value in reference.items():
            if key.startswith("grad."):  # per-rank losses add up to the full-batch loss: so do the gradients
                torch.testing.assert_close(per_rank[0][key] + per_rank[1][key], value, rtol=1e-5, atol=1e-5)
            elif key.startswith("buffer."):
                for rank in per_rank:
                    torch.testing.assert_close(rank[key], value, rtol=1e-6, atol=1e-6, msg=key)


def test_llinet_ddp_train_step_with_global_bn_equals_single_process(tmp_path) -> None:
    ranks = _spawn(tmp_path, "llinet")
    reference = _llinet_step(False, DistInfo())
    for rank in ranks:
        assert rank["global"].keys() == reference.keys()
        for key, value in reference.items():
            torch.testing.assert_close(rank["global"][key], value, rtol=1e-5, atol=1e-7, msg=key)
    # Without the conversion DDP keeps per-rank statistics: the first BN's running mean is far off.
    key = "state.image_encoder.stem.1.running_mean"
    synced_error = (ranks[0]["global"][key] - reference[key]).abs().max()
    plain_error = (ranks[0]["plain"][key] - reference[key]).abs().max()
    assert plain_error > 1e-2 and plain_error > 1000 * synced_error, (plain_error, synced_error)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(ranks[1]["plain"][key], reference[key], rtol=1e-4, atol=1e-5)
