"""A gloo process group on loopback, for the CPU tests of DDP code (spawned workers or one process)."""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import torch.distributed as dist


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gloo_group(rank: int, world_size: int, port: int) -> Iterator[None]:
    """Join (rank of world_size) the default group at 127.0.0.1:port; always leave it again."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()
