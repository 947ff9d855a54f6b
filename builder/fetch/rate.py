"""Per-node request pacing, 429-burst detection and the run-wide halt flag.

YouTube limits by IP, so limits must hold for all worker processes of one
machine together, whatever the distributor. The shared state is a small JSON
file in the node's temp folder guarded by ``flock``: every worker on the node
reserves its next start slot there, and records the 429s it sees. A slot is
reserved under the lock and slept outside it, so waiting workers do not block
each other's bookkeeping.

The halt flag is a file in the media root (shared by every worker of the run,
also across nodes when the root is on shared storage): once a worker sees a
bot check or a 429 burst, no worker starts another download.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from builder.io.atomic import atomic_write_json

HALT_FILE = ".fetch_halt.json"


class NodeRateLimiter:
    """Pacing and 429 bookkeeping shared by all processes on one machine for one host."""

    def __init__(self, key: str, *, max_rate: float = 0.0, burst_429: int = 3, burst_window: float = 300.0,
                 state_dir: str | os.PathLike | None = None) -> None:
        base = Path(state_dir) if state_dir else Path(tempfile.gettempdir()) / f"llinet-fetch-{os.getuid()}"
        base.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        self.path = base / f"rate-{digest}.json"
        self.interval = 1.0 / max_rate if max_rate and max_rate > 0 else 0.0
        self.burst_429 = burst_429
        self.burst_window = burst_window

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 1 << 16)
            try:
                state = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                state = {}
            if not isinstance(state, dict):
                state = {}
            yield state
            data = json.dumps(state).encode()
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)  # releases the lock

    def wait_turn(self, should_stop=lambda: False) -> float:
        """Sleep until this process may start its next download; returns seconds waited."""
        if not self.interval:
            return 0.0
        now = time.time()
        with self._state() as state:
            slot = max(now, float(state.get("next_start", 0.0)))
            state["next_start"] = slot + self.interval
        return _sleep_until(slot, should_stop)

    def record_429(self) -> bool:
        """Count a 429; True when the node has seen a burst (``burst_429`` within ``burst_window`` s)."""
        now = time.time()
        with self._state() as state:
            recent = [t for t in state.get("recent_429", []) if now - float(t) <= self.burst_window]
            recent.append(now)
            state["recent_429"] = recent
            return len(recent) >= self.burst_429

    def record_success(self) -> None:
        """A download went through: the 429s before it were not a burst."""
        with self._state() as state:
            if state.get("recent_429"):
                state["recent_429"] = []


def _sleep_until(deadline: float, should_stop) -> float:
    start = time.time()
    while not should_stop():
        left = deadline - time.time()
        if left <= 0:
            break
        time.sleep(min(left, 0.2))
    return time.time() - start


def sleep_with_halt(seconds: float, root: str | os.PathLike) -> bool:
    """Sleep ``seconds`` unless the run is halted meanwhile; True if it slept fully."""
    _sleep_until(time.time() + seconds, lambda: halt_reason(root) is not None)
    return halt_reason(root) is None


def request_halt(root: str | os.PathLike, error_class: str, message: str, advice: str) -> None:
    path = Path(root) / HALT_FILE
    if path.exists():
        return  # the first reason is the one to report
    atomic_write_json(path, {"error_class": error_class, "message": message, "advice": advice,
                             "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "pid": os.getpid()})


def halt_reason(root: str | os.PathLike) -> dict | None:
    path = Path(root) / HALT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        return {"error_class": "halt", "message": "halt file unreadable", "advice": ""}


def clear_halt(root: str | os.PathLike) -> None:
    with contextlib.suppress(FileNotFoundError):
        (Path(root) / HALT_FILE).unlink()
