"""Training-step time of every Table 1 method, relative to LLINet's (for bench/table1.sh's run-time estimate).

The step is llinet-train's (model.training.engine.TrainStep with the method: log-mel, both
encoders, the method's heads, its loss, backward, SGD) on a batch already on the device (random
uint8 frames, random waveforms: the cost does not depend on the content). Prints seconds per step
and samples/s for each method, and each method's cost as a multiple of LLINet's.

  python bench/method_costs.py --preset paper            # ResNet-101, 244 px, batch 32, 3.02 s 44.1 kHz
  python bench/method_costs.py --preset cpu --steps 3    # ResNet-18, 112 px, batch 8
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.methods.registry import build_method, trainable_methods  # noqa: E402
from model.network.config import ModelConfig  # noqa: E402
from model.network.factory import build_model  # noqa: E402
from model.training.engine import TrainStep, build_optimizer, configure_precision  # noqa: E402

PRESETS = {  # backbone, image size, batch, clip seconds, sample rate
    "paper": ("resnet101", 244, 32, 3.02, 44100),
    "cpu": ("resnet18", 112, 8, 3.02, 44100),
}
TRAIN_CLASSES = 24   # INSTRUMENT-32CLASS's seen classes: the size of the classifier heads


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_seconds(name: str, preset: str, device: torch.device, precision: str, warmup: int, steps: int) -> float:
    backbone, size, batch, seconds, rate = PRESETS[preset]
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone=backbone, image_size=size, image_weights="none",
                                  gamma_att=1.0 if name == "llinet" else 0.0))
    method = build_method(name, net, TRAIN_CLASSES).to(device)
    optimizer, _ = build_optimizer(method, 1e-3, 0.9, 1e-3, 10, 0.5)
    step = TrainStep(method, optimizer, None, device, rate, precision, method=method)
    generator = torch.Generator().manual_seed(0)
    batch_data = {"images": torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator),
                  "waves": torch.rand((batch, 1, int(seconds * rate)), generator=generator) * 0.2 - 0.1,
                  "labels": torch.arange(batch) % TRAIN_CLASSES}
    batch_data = {k: v.to(device) for k, v in batch_data.items()}
    method.train()
    for _ in range(warmup):
        step(batch_data)
    sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        step(batch_data)
    sync(device)
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="paper")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="tf32", choices=("fp32", "tf32", "bf16"))
    parser.add_argument("--methods", default=",".join(trainable_methods()))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    configure_precision(args.precision)
    batch = PRESETS[args.preset][2]
    times = {}
    print(f"preset {args.preset}, device {device}, precision {args.precision}, torch threads {torch.get_num_threads()}")
    for name in args.methods.split(","):
        times[name] = step_seconds(name, args.preset, device, args.precision, args.warmup, args.steps)
        relative = f", {times[name] / times['llinet']:.2f}x LLINet" if "llinet" in times else ""
        print(f"{name:8s} {times[name]:8.3f} s/step  {batch / times[name]:8.2f} samples/s{relative}", flush=True)


if __name__ == "__main__":
    main()
