"""Where training batches are assembled: on the host by DataLoader workers, or on the device.

``host``: workers read the memory-mapped cache (``PlannedBatches``), batches
travel through pinned memory. Every batch crosses the process boundary and the
PCIe bus (~0.7 MB per sample at the paper preset), which is what limits a fast
GPU: on a 2-core CPU machine the cached path alone served 3,625
samples/s in the main process but 1,947 with 2 workers (paper preset,
``bench/train_throughput.py --data-only``).

``device``: the split's decoded frames (uint8) and waveforms are copied to the
device once; each batch is then one gather (crop offsets and flips become index
arithmetic) with no worker, no copy and no host sync. INSTRUMENT-32's train
split at the paper preset is 3,600 x (3x289x289 B + 133,182 x 4 B) = 2.8 GB,
small next to an H100's 80 GB. A batch is identical, element for element, to
the host path's for the same plan, so results do not depend on the choice.

``auto``: ``device`` when both splits fit in a quarter of the free device
memory (host RAM on a CPU), else ``host``.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from model.training.data import PlannedBatches, SplitData

PLACEMENTS = ("auto", "device", "host")
DEVICE_MEMORY_SHARE = 0.25  # of the free memory, leaving the rest to activations and cuDNN workspaces
COPY_CHUNK = 256            # rows per host->device copy while loading (bounds the host RAM spike)


def resident_bytes(data: SplitData) -> int:
    """Bytes the split occupies on the device (images uint8 + waveforms float32)."""
    images, waves = data.cache.images, data.cache.waves
    per_row = int(np.prod(images.shape[1:])) * images.itemsize + int(waves.shape[1]) * waves.itemsize
    return len(data.rows) * per_row


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of ``device`` (host RAM not counting the page cache for a CPU); None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "cpu":
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # not Linux
            return None
    return None


def choose_placement(requested: str, device: torch.device, splits: list[SplitData]) -> str:
    """Resolve ``auto``: ``device`` when the splits fit in a quarter of the free memory, else ``host``.

    Also on a CPU ("device" memory is then host RAM): the main process cuts a batch
    in ~1 ms, while worker processes pay for pickling batches through shared
    memory and compete with the model for the same cores.
    """
    if requested not in PLACEMENTS:
        raise ValueError(f"data placement must be one of {PLACEMENTS}, got {requested!r}")
    if requested != "auto":
        return requested
    free = free_memory_bytes(device)
    needed = sum(resident_bytes(s) for s in splits)
    if device.type == "cpu":  # the processes of one machine share its RAM, each holding a copy
        needed *= int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return "device" if free is not None and needed <= DEVICE_MEMORY_SHARE * free else "host"


def cut_crops_gather(images: torch.Tensor, plan: torch.Tensor, crop: int) -> torch.Tensor:
    """Crops + flips of ``plan`` [B, 5] from ``images`` [N, C, S, S] as ONE indexing kernel (for GPUs,
    where a kernel launch per sample would cost more than the gather itself)."""
    sample, _, top, left, flip = plan.unbind(1)
    offsets = torch.arange(crop, device=images.device)
    channels = torch.arange(images.shape[1], device=images.device)
    rows = top[:, None] + offsets                                                      # [B, crop]
    cols = left[:, None] + torch.where(flip[:, None].bool(), crop - 1 - offsets, offsets)
    return images[sample[:, None, None, None], channels[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]                      # [B, C, crop, crop]


def cut_crops_sliced(images: torch.Tensor, plan: torch.Tensor, crop: int) -> torch.Tensor:
    """The same crops by one slice copy per sample: ~20x faster than the gather on a CPU
    (0.7 vs 13 ms for 32 crops of 244 px here), where element-wise gathers are slow."""
    out = torch.empty((len(plan), images.shape[1], crop, crop), dtype=images.dtype, device=images.device)
    for k, (sample, _, top, left, flip) in enumerate(plan.tolist()):
        patch = images[sample, :, top:top + crop, left:left + crop]
        out[k] = patch.flip(-1) if flip else patch
    return out


class DeviceResidentBatches:
    """A split's decoded media held on ``device``; ``batch(spec)`` cuts one planned batch there."""

    def __init__(self, data: SplitData, crop: int, device: torch.device) -> None:
        self.crop, self.device = crop, device
        cache = data.cache
        self.images = torch.empty((len(data.rows), *cache.images.shape[1:]), dtype=torch.uint8, device=device)
        self.waves = torch.empty((len(data.rows), cache.waves.shape[1]), dtype=torch.float32, device=device)
        for start in range(0, len(data.rows), COPY_CHUNK):
            rows = data.rows[start:start + COPY_CHUNK]  # sorted cache rows: sequential memmap reads
            self.images[start:start + len(rows)].copy_(torch.from_numpy(np.ascontiguousarray(cache.images[rows])))
            self.waves[start:start + len(rows)].copy_(torch.from_numpy(np.ascontiguousarray(cache.waves[rows])))
        self.labels = torch.from_numpy(data.labels).to(device)
        self.lengths = torch.from_numpy(np.asarray(cache.lengths[data.rows], dtype=np.int64)).to(device)

    def batch(self, spec: np.ndarray) -> dict[str, torch.Tensor]:
        """spec [B, 5] (image sample, audio sample, crop top, crop left, flip) as in ``epoch_plan``."""
        plan = torch.from_numpy(np.ascontiguousarray(spec))
        cut = cut_crops_gather if self.device.type == "cuda" else cut_crops_sliced
        images = cut(self.images, plan.to(self.device, non_blocking=True), self.crop)
        sample, audio = plan[:, 0].to(self.device), plan[:, 1].to(self.device)
        return {"images": images, "waves": self.waves[audio].unsqueeze(1), "lengths": self.lengths[audio],
                "labels": self.labels[sample], "audio_labels": self.labels[audio]}

    def iterate(self, plan: np.ndarray | list[np.ndarray]) -> Iterator[dict[str, torch.Tensor]]:
        for spec in plan:
            yield self.batch(spec)


class _ResidentPlan:
    """The batches of one plan from a device-resident split; every iteration starts again."""

    def __init__(self, resident: DeviceResidentBatches, plan: np.ndarray | list[np.ndarray]) -> None:
        self.resident, self.plan = resident, plan

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.resident.iterate(self.plan)


def planned_batches(data: SplitData, plan: np.ndarray | list[np.ndarray], crop: int, placement: str,
                    device: torch.device, workers: int, persistent: bool = False
                    ) -> Iterable[dict[str, torch.Tensor]]:
    """The batches of ``plan`` in order, from the chosen placement; iterable again and again
    (``persistent``: host loader workers stay alive between iterations, e.g. per-epoch validation)."""
    if placement == "device":
        return _ResidentPlan(DeviceResidentBatches(data, crop, device), plan)
    return DataLoader(PlannedBatches(data, plan, crop), batch_size=None, num_workers=workers,
                      pin_memory=device.type == "cuda", prefetch_factor=2 if workers else None,
                      persistent_workers=persistent and workers > 0)
