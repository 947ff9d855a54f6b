"""Resumable, verified HTTP(S) download of one file (stdlib urllib only).

* Partial data lives in ``<name>.part``; a rerun resumes it with
  ``Range: bytes=<have>-``, guarded by ``If-Range`` with the validator
  (ETag / Last-Modified) the server gave, kept in ``<name>.part.json``.
* A server that ignores Range (200 instead of 206) or whose file changed
  restarts the download cleanly from byte 0.
* Transient failures (connection errors, timeouts, truncated bodies, HTTP
  408/429/5xx) are retried with exponential backoff; the counter resets
  whenever an attempt made progress.
* With ``expected_sha256`` the final file appears (atomic rename) only if it
  matches; on a mismatch the part is deleted and :class:`ChecksumError` names
  the file, the expected and the actual hash.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from builder import __version__
from builder.errors import LlinetError
from builder.io.atomic import atomic_write_json

CHUNK_BYTES = 256 * 1024
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(LlinetError):
    """A download that failed for good (HTTP 404, retries exhausted, ...)."""


class ChecksumError(DownloadError):
    """Downloaded or copied bytes whose sha256 is not the pinned one."""

    def __init__(self, name: str, expected: str, actual: str, source: str) -> None:
        self.name, self.expected, self.actual, self.source = name, expected, actual, source
        super().__init__(f"{name}: sha256 mismatch: expected {expected}, got {actual} "
                         f"(from {source}); the file was discarded, nothing was written in its place")


class _Transient(Exception):
    """A failure worth retrying."""


@dataclass(frozen=True)
class FetchResult:
    path: Path
    size: int
    sha256: str
    already_present: bool


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: str | os.PathLike, *, expected_sha256: str | None = None,
          retries: int = 4, backoff_s: float = 1.0, timeout_s: float = 60.0, progress: bool = True,
          log: Callable[[str], None] | None = None) -> FetchResult:
    """Download ``url`` to ``dest`` (see module doc). A complete ``dest`` with the right hash is kept."""
    dest = Path(dest)
    say = log or (lambda message: None)
    if dest.is_file():
        actual = sha256_file(dest)
        if expected_sha256 is None or actual == expected_sha256:
            return FetchResult(dest, dest.stat().st_size, actual, already_present=True)
        say(f"{dest.name}: the file there has sha256 {actual}, not the pinned {expected_sha256}; downloading again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    state = dest.with_name(dest.name + ".part.json")
    job = _Job(url, part, state, retries, backoff_s, timeout_s, progress, dest.name, say)
    try:
        resumed = job.prepare_resume(trust_unvalidated=expected_sha256 is not None)
        job.run()
        actual = sha256_file(part)
        if expected_sha256 is not None and actual != expected_sha256 and resumed:
            say(f"{dest.name}: sha256 mismatch after resuming old partial data; downloading from scratch")
            job.discard()
            job.run()
            actual = sha256_file(part)
        if expected_sha256 is not None and actual != expected_sha256:
            job.discard()
            raise ChecksumError(dest.name, expected_sha256, actual, url)
        with open(part, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(part, dest)
        _fsync_dir(dest.parent)
        with contextlib.suppress(FileNotFoundError):
            state.unlink()
    except KeyboardInterrupt:
        say(f"{dest.name}: interrupted; partial data kept in {part.name}, the next run resumes it")
        raise
    return FetchResult(dest, dest.stat().st_size, actual, already_present=False)


class _Job:
    """The mutable state of one file's download: the .part file and its validator."""

    def __init__(self, url: str, part: Path, state: Path, retries: int, backoff_s: float,
                 timeout_s: float, progress: bool, label: str, say: Callable[[str], None]) -> None:
        self.url, self.part, self.state = url, part, state
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.progress, self.label, self.say = progress, label, say
        self.validator: str | None = None

    def prepare_resume(self, trust_unvalidated: bool) -> bool:
        """Keep a usable .part; return whether there is data to resume from."""
        saved = {}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            saved = json.loads(self.state.read_text(encoding="utf-8"))
        have = self.part.stat().st_size if self.part.is_file() else 0
        if have == 0:
            return False
        if not isinstance(saved, dict) or saved.get("url") != self.url:
            # Unknown origin: only worth resuming when a pinned hash will catch a wrong splice.
            if not trust_unvalidated:
                self.say(f"{self.label}: partial data of unknown origin; starting over")
                self.discard()
                return False
        else:
            self.validator = saved.get("validator")
        self.say(f"{self.label}: resuming at byte {have:,}")
        return True

    def discard(self) -> None:
        for path in (self.part, self.state):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.validator = None

    def run(self) -> None:
        failures = 0
        while True:
            before = self.part.stat().st_size if self.part.is_file() else 0
            try:
                self._attempt(before)
                return
            except _Transient as exc:
                after = self.part.stat().st_size if self.part.is_file() else 0
                failures = 1 if after > before else failures + 1
                if failures > self.retries:
                    raise DownloadError(
                        f"{self.url}: giving up after {failures} failed attempts in a row ({exc}); "
                        f"{after:,} bytes kept in {self.part}, rerun to resume") from None
                wait = self.backoff_s * 2 ** (failures - 1)
                self.say(f"{self.label}: {exc}; retry {failures}/{self.retries} in {wait:.1f} s")
                time.sleep(wait)

    def _attempt(self, offset: int) -> None:
        headers = {"User-Agent": f"llinet/{__version__}", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self.validator:
                headers["If-Range"] = self.validator
        try:
            response = urllib.request.urlopen(urllib.request.Request(self.url, headers=headers),
                                              timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            with exc:
                self._http_error(exc, offset)
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            raise _Transient(f"cannot connect: {getattr(exc, 'reason', exc)}") from None
        with response:
            if response.status == 206:
                first, total = self._content_range(response.headers.get("Content-Range"))
                if first != offset:
                    self.discard()
                    raise _Transient(f"server answered bytes {first}- to a request for {offset}-")
                mode = "ab"
            elif response.status == 200:
                if offset:
                    self.say(f"{self.label}: server sent the whole file instead of a range; restarting")
                offset, mode = 0, "wb"
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            else:
                raise DownloadError(f"{self.url}: unexpected HTTP {response.status} {response.reason}")
            if mode == "wb":
                self._save_validator(response.headers)
            self._copy_body(response, mode, offset, total)

    def _http_error(self, exc: urllib.error.HTTPError, offset: int) -> None:
        if exc.code == 416 and offset:
            _, _, total = (exc.headers.get("Content-Range") or "").rpartition("/")
            if total.isdigit() and int(total) == offset:
                return  # the part already holds the whole file
            self.discard()
            raise _Transient(f"server refused resuming at byte {offset:,} (HTTP 416); restarting")
        if exc.code in RETRYABLE_STATUS:
            raise _Transient(f"HTTP {exc.code} {exc.reason}")
        raise DownloadError(f"{self.url}: HTTP {exc.code} {exc.reason} (while fetching {self.label})")

    def _content_range(self, header: str | None) -> tuple[int, int | None]:
        match = CONTENT_RANGE_RE.fullmatch((header or "").strip())
        if match is None:
            self.discard()
            raise _Transient(f"206 reply with an unusable Content-Range {header!r}; restarting")
        total = match.group(3)
        return int(match.group(1)), int(total) if total.isdigit() else None

    def _save_validator(self, headers) -> None:
        etag = headers.get("ETag")
        # RFC 9110: If-Range needs a strong validator; weak ETags (W/"...") don't qualify.
        self.validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
        atomic_write_json(self.state, {"url": self.url, "validator": self.validator})

    def _copy_body(self, response, mode: str, offset: int, total: int | None) -> None:
        written = offset
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=self.label, disable=None if self.progress else True, leave=False, file=sys.stderr)
        try:
            with open(self.part, mode) as out:
                while True:
                    try:
                        chunk = response.read(CHUNK_BYTES)
                    except (http.client.HTTPException, OSError) as exc:
                        raise _Transient(f"connection lost after {written:,} bytes: {exc}") from None
                    if not chunk:
                        break
                    try:
                        out.write(chunk)
                    except OSError as exc:  # disk full, permissions: retrying won't help
                        raise DownloadError(f"cannot write {self.part}: {exc}") from exc
                    written += len(chunk)
                    bar.update(len(chunk))
        except OSError as exc:  # opening the part file
            raise DownloadError(f"cannot write {self.part}: {exc}") from exc
        finally:
            bar.close()
        if total is not None and written != total:
            if written > total:
                self.discard()
            raise _Transient(f"connection closed after {written:,} of {total:,} bytes")


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (a crash right after it must not lose the file)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
