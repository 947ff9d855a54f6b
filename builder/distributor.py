"""Run a stage's per-shard worker function locally or on Ray.

* ``local`` with one worker: in this process (no pool start-up, easy to debug).
* ``local`` with N workers: a process pool (``spawn``: safe with the threads
  that yt-dlp, tqdm and torch start). Workers die with the parent
  (``PR_SET_PDEATHSIG``) so a ``kill -9`` of the driver leaves no orphan
  still writing into the media root.
* ``ray``: ``ray.init(address=...)`` for an existing cluster, or a local
  instance with ``workers`` CPUs; one task per shard.

The worker function must be a module-level function ``fn(shard, *args)``
returning a picklable result; results are yielded as shards complete and the
stage merges them back into its one manifest.
"""
from __future__ import annotations

import concurrent.futures as futures
import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from builder.errors import InputError

DISTRIBUTORS = ("local", "ray")


def chunk(items: Sequence[Any], size: int) -> list[list[Any]]:
    size = max(1, int(size))
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def default_shard_size(n_items: int, workers: int, *, per_worker: int = 4, largest: int = 64) -> int:
    """Small enough that every worker gets several shards (load balance, progress), capped."""
    return max(1, min(largest, -(-n_items // max(1, workers * per_worker))))


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C


class Distributor:
    """Context manager that maps a worker function over shards."""

    def __init__(self, kind: str = "local", workers: int = 1, ray_address: str | None = None) -> None:
        if kind not in DISTRIBUTORS:
            raise InputError(f"distributor must be one of {DISTRIBUTORS}, got {kind!r}")
        if workers < 1:
            raise InputError(f"workers must be >= 1, got {workers}")
        self.kind = kind
        self.workers = workers
        self.ray_address = ray_address
        self._pool: futures.ProcessPoolExecutor | None = None
        self._ray_started = False
        self._remote_cache: dict[Callable, Any] = {}

    def __enter__(self) -> Distributor:
        if self.kind == "ray":
            self._start_ray()
        elif self.workers > 1:
            self._pool = futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._ray_started:
            import ray
            ray.shutdown()
            self._ray_started = False

    def _start_ray(self) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InputError("--distributor ray needs Ray: pip install 'llinet[ray]'") from exc
        if ray.is_initialized():
            return
        if self.ray_address:
            ray.init(address=self.ray_address, log_to_driver=False)
        else:
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        self._ray_started = True

    def imap_unordered(self, fn: Callable, shards: Iterable[Any], *args: Any) -> Iterator[Any]:
        """Yield ``fn(shard, *args)`` for each shard, in completion order."""
        shards = list(shards)
        if self.kind == "ray":
            yield from self._ray_map(fn, shards, args)
        elif self._pool is None:
            for shard in shards:
                yield fn(shard, *args)
        else:
            pending = {self._pool.submit(fn, shard, *args) for shard in shards}
            try:
                for done in futures.as_completed(pending):
                    yield done.result()
            finally:
                for future in pending:
                    future.cancel()

    def _ray_map(self, fn: Callable, shards: list[Any], args: tuple) -> Iterator[Any]:
        import ray

        remote = self._remote_cache.get(fn)
        if remote is None:
            remote = self._remote_cache[fn] = ray.remote(num_cpus=1, max_retries=0)(fn)
        shared = [ray.put(a) for a in args]
        refs = [remote.remote(shard, *shared) for shard in shards]
        try:
            while refs:
                done, refs = ray.wait(refs, num_returns=1)
                yield ray.get(done[0])
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)
