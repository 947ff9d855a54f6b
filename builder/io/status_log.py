"""Append-only per-clip status logs (JSON Lines).

One record per attempt, never rewritten. Each record is written with a single
``write(2)`` on a file opened with ``O_APPEND``, so records from several worker
processes never interleave and a ``kill -9`` can at worst lose the record being
written, never corrupt an earlier one. Readers skip a torn or unparsable line
(and say how many they skipped) rather than fail: the log is the resume state
and must stay readable after any crash.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class LogReadResult:
    records: list[dict[str, Any]]
    skipped_lines: list[int]     # 1-based line numbers that were not valid records


class StatusLog:
    """A JSONL file of per-clip records; every record has at least ``clip_id`` and ``status``."""

    def __init__(self, path: str | os.PathLike, *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Append one record (``time`` is added if missing); returns the record written."""
        if "clip_id" not in record or "status" not in record:
            raise ValueError("a status record needs clip_id and status")
        record = {**record}
        record.setdefault("time", utc_now())
        line = (json.dumps(record, sort_keys=True, ensure_ascii=True, default=str) + "\n").encode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a line torn by a killed writer, or this record would join it
            _write_all(fd, line)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return record

    def extend(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.append(record)

    def read(self) -> LogReadResult:
        records: list[dict[str, Any]] = []
        skipped: list[int] = []
        if not self.path.exists():
            return LogReadResult(records, skipped)
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                record = _parse(raw)
                if record is None:
                    if raw.strip():
                        skipped.append(number)
                    continue
                records.append(record)
        return LogReadResult(records, skipped)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.read().records)

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last record of each clip, in log order."""
        out: dict[str, dict[str, Any]] = {}
        for record in self.read().records:
            out[record["clip_id"]] = record
        return out


def _write_all(fd: int, data: bytes) -> None:
    # A regular-file write of a few hundred bytes completes in one call; loop anyway.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.endswith(b"\n"):
        return None  # torn final line of a killed writer
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("clip_id"), str) or "status" not in record:
        return None
    return record
