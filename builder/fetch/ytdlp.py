"""Download one clip's section with yt-dlp's Python API, check it, move it into place.

Runs inside worker processes (local pool or Ray). One ``YoutubeDL`` per
process is reused for every clip (creating one costs ~50 ms); per clip only
the output template and the section change.

Atomicity: yt-dlp and FFmpeg write into ``<root>/.tmp/<clip>.<pid>.<rand>/``;
the file is checked with ffprobe (video and audio streams, duration) and only
then renamed to ``<root>/clips/<clip_id>.<ext>`` (same filesystem, so the
rename is atomic). The status record is appended after the rename: a
``kill -9`` between the two leaves a valid file that the next run adopts
without a request.
"""
from __future__ import annotations

import importlib
import os
import random
import shutil
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from builder.fetch.diagnose import diagnose, discard_stale, guarded_fetch, media_fields
from builder.fetch.errors import HALT, PERMANENT, Failure, classify_exception, media_failure, one_line
from builder.fetch.health import WARNING_CHARS, ExtractionHealth
from builder.fetch.options import (
    ADVICE,
    CLIPS_DIR,
    DIRECT_MEDIA_SUFFIXES,
    STATUS_LOG,
    TMP_DIR,
    YOUTUBE_HOSTS,
    FetchOptions,
    build_url,
)
from builder.fetch.rate import NodeRateLimiter, halt_reason, request_halt, sleep_with_halt
from builder.fetch.runtime import default_cache_dir, js_runtimes_param, parse_extractor_args
from builder.io.status_log import StatusLog
from builder.manifest.ids import validate_clip_id, validate_ytid
from builder.media.ffmpeg import MediaError, check_clip, first_line, probe


def find_existing(root: Path, clip_id: str) -> Path | None:
    folder = root / CLIPS_DIR
    for path in sorted(folder.glob(f"{validate_clip_id(clip_id)}.*")):
        if path.is_file() and not path.name.startswith("."):
            return path
    return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None, jitter: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``base * 2^(attempt-1)``, capped,
    times ``1 + jitter`` (jitter in [0, 1): parallel workers do not retry in lockstep), and never
    less than the server's Retry-After (also capped)."""
    delay = min(cap, base * 2 ** (attempt - 1)) * (1.0 + jitter)
    if retry_after:
        delay = max(delay, min(retry_after, cap))
    return delay


MAX_WARNINGS = 8   # per clip in its status record: enough to see why, bounded for a noisy extractor


class _Logger:
    """Collects yt-dlp's messages instead of printing them: its warnings go into the clip's status record
    (they are often the only line that says why every clip fails)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    info = debug

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    def take_warnings(self) -> list[str]:
        """The warnings since the last call, one line each, without repeats."""
        taken, self.warnings = self.warnings, []
        return _merge([], taken)


def _merge(known: list[str], new: list[str]) -> list[str]:
    out = list(known)
    for message in new:
        line = one_line(message, limit=WARNING_CHARS)
        if line and line not in out and len(out) < MAX_WARNINGS:
            out.append(line)
    return out


class ClipDownloader:
    """Fetches clips for one worker process."""

    def __init__(self, options: FetchOptions) -> None:
        import yt_dlp  # imported here: only fetch workers need it

        self.options = options
        self.root = Path(options.root)
        self.log = StatusLog(self.root / STATUS_LOG)
        self.logger = _Logger()
        host = options.url_template.split("://", 1)[1].split("/", 1)[0]
        self.limiter = NodeRateLimiter(host, max_rate=options.max_rate, burst_429=options.burst_429,
                                       burst_window=options.burst_window, state_dir=options.rate_state_dir)
        self._cookie_copy: Path | None = None
        self.health = ExtractionHealth()
        params = self._params()
        self.ydl = yt_dlp.YoutubeDL(params)
        self.ie_key: str | None = None
        if options.extractor:
            module_name, _, class_name = options.extractor.partition(":")
            ie = getattr(importlib.import_module(module_name), class_name)()
            self.ydl.add_info_extractor(ie)
            self.ie_key = ie.ie_key()

    def _extractor_for(self, url: str) -> str | None:
        """The extractor for this template's URLs, found once: yt-dlp otherwise tries ~1,800
        extractors' URL patterns on every clip (~0.1 s each time here)."""
        if self.ie_key is None:
            host = url.split("://", 1)[-1].split("/", 1)[0].split(":")[0].lower()
            path = url.split("?", 1)[0].lower()
            if host in YOUTUBE_HOSTS:
                self.ie_key = "Youtube"
            elif path.endswith(DIRECT_MEDIA_SUFFIXES):
                self.ie_key = "Generic"   # yt-dlp's handler for direct links to media files
            else:
                from yt_dlp.extractor import gen_extractor_classes

                self.ie_key = next((ie.ie_key() for ie in gen_extractor_classes() if ie.suitable(url)), None)
        return self.ie_key

    def _params(self) -> dict[str, Any]:
        from yt_dlp.utils import download_range_func

        o = self.options
        h = int(o.max_height)
        params: dict[str, Any] = {
            # Best video at or under the cap plus best audio, merged; a single
            # muxed file under the cap otherwise; the smallest if nothing fits.
            "format": f"bv*[height<=?{h}]+ba/b[height<=?{h}]/wv*+ba/w",
            "merge_output_format": "mp4",
            "outtmpl": {"default": "clip.%(ext)s"},
            # Warnings reach the logger (yt-dlp hands every warning to a logger, if one is set).
            "quiet": True, "noprogress": True, "logger": self.logger,
            "noplaylist": True, "overwrites": True, "continuedl": False,
            "retries": 0, "fragment_retries": 0, "file_access_retries": 0,
            "socket_timeout": o.timeout,
            "external_downloader_args": {
                # Argument fragments, not ffmpeg-python graphs: yt-dlp assembles the FFmpeg
                # command itself and splices these lists in before the input and the output.
                # FFmpeg otherwise waits forever on a stalled connection.
                "ffmpeg_i": ["-rw_timeout", str(int(o.timeout * 1_000_000))],
                "ffmpeg_o": list(o.output_args),
            },
            # YouTube's player JavaScript and its solved challenges, kept across clips and runs: without
            # the cache every clip downloads and solves the player again (more requests, earlier bot checks).
            "cachedir": str(o.cache_dir if o.cache_dir is not None else default_cache_dir()),
            "js_runtimes": js_runtimes_param(o.js_runtime),
        }
        if o.extractor_args:
            params["extractor_args"] = parse_extractor_args(o.extractor_args)
        if o.sections:
            params["download_ranges"] = download_range_func(None, [(0.0, 1.0)])  # replaced per clip
            params["force_keyframes_at_cuts"] = True
        if o.proxy:
            params["proxy"] = o.proxy
        if o.sleep_requests:
            params["sleep_interval_requests"] = o.sleep_requests
        if o.cookies:
            # yt-dlp writes the jar back on exit: give each process its own copy
            # so parallel workers never clobber the user's file.
            tmp = self.root / TMP_DIR
            tmp.mkdir(parents=True, exist_ok=True)
            self._cookie_copy = tmp / f"cookies.{os.getpid()}.{uuid.uuid4().hex[:8]}.txt"
            shutil.copyfile(o.cookies, self._cookie_copy)
            params["cookiefile"] = str(self._cookie_copy)
        return params

    def close(self) -> None:
        self.ydl.close()
        if self._cookie_copy is not None:
            self._cookie_copy.unlink(missing_ok=True)

    # -- one clip ----------------------------------------------------------
    def fetch(self, task: dict[str, Any]) -> dict[str, Any] | None:
        """Fetch one clip with retries; returns its final record (None if the run was halted first)."""
        clip_id, ytid = validate_clip_id(task["clip_id"]), validate_ytid(task["ytid"])
        if task.get("stale"):
            discard_stale(self.root, clip_id)   # the log says it is another segment's or format's file
        existing = find_existing(self.root, clip_id)
        if existing is not None:
            adopted = self._adopt(task, existing)
            if adopted is not None:
                return adopted
        o = self.options
        url = build_url(o.url_template, ytid, clip_id)
        warnings: list[str] = []      # this clip's, over all its attempts
        for attempt in range(1, o.retries + 2):
            if halt_reason(self.root) is not None:
                return None
            self.limiter.wait_turn(lambda: halt_reason(self.root) is not None)
            started = time.time()
            outcome = self._attempt(task, url)
            seconds = round(time.time() - started, 3)
            new_warnings = self.logger.take_warnings()
            warnings = _merge(warnings, new_warnings)
            noted: dict[str, Any] = {"warnings": warnings} if warnings else {}
            failure = None if isinstance(outcome, dict) else outcome
            verdict = self.health.judge(new_warnings, failure)
            if verdict.halt is not None:
                request_halt(self.root, verdict.halt, verdict.message, ADVICE[verdict.halt])
            if isinstance(outcome, dict):
                self.limiter.record_success()
                return self._record(task, "ok", attempt=attempt, seconds=seconds, **outcome, **noted)
            failure = outcome
            if verdict.halt is not None:
                return self._record(task, "halted", failure, attempt, seconds, **noted)
            if verdict.hold:       # not the video's fault: tried again by the next run, never dropped
                return self._record(task, "failed", failure, attempt, seconds, **noted)
            if failure.kind == HALT:
                request_halt(self.root, failure.error_class, failure.message, ADVICE["bot_check"])
                return self._record(task, "halted", failure, attempt, seconds, **noted)
            if failure.kind == PERMANENT:
                return self._record(task, "unavailable", failure, attempt, seconds, **noted)
            if failure.error_class == "http_429" and self.limiter.record_429():
                failure = replace(failure, error_class="rate_limited")
                request_halt(self.root, "rate_limited", failure.message, ADVICE["rate_limited"])
                return self._record(task, "halted", failure, attempt, seconds, **noted)
            if attempt > o.retries:
                return self._record(task, "failed", failure, attempt, seconds, **noted)
            self._record(task, "retry", failure, attempt, seconds, **noted)
            if not sleep_with_halt(self._backoff(attempt, failure), self.root):
                return None
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, failure: Failure) -> float:
        o = self.options
        return backoff_delay(attempt, o.backoff, o.max_backoff, failure.retry_after, random.random())

    def _adopt(self, task: dict[str, Any], path: Path) -> dict[str, Any] | None:
        """A file in clips/ without a valid record (a kill between its rename and its record): the same
        ffprobe checks as a fresh download, never a request; a file that fails them is fetched again."""
        start, end = float(task["start"]), float(task["end"])
        problem, media = self._check(path, end - start if self.options.sections else None, {}, "", start, end)
        if problem is not None or media is None:
            path.unlink(missing_ok=True)
            return None
        fields: dict[str, Any] = {"media_path": f"{CLIPS_DIR}/{path.name}", "duration": media.duration,
                                  **media_fields(media, path)}
        return self._record(task, "ok", attempt=0, seconds=0.0, bytes=path.stat().st_size, adopted=True, **fields)

    def _attempt(self, task: dict[str, Any], url: str) -> dict[str, Any] | Failure:
        tmp = self.root / TMP_DIR / f"{task['clip_id']}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            outcome = self._download(task, url, tmp)
            # Asked while tmp still holds the partial output: on a full disk, that is what fills it.
            return outcome if isinstance(outcome, dict) else diagnose(self, outcome, task, url, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _download(self, task: dict[str, Any], url: str, tmp: Path) -> dict[str, Any] | Failure:
        from yt_dlp.utils import DownloadError, download_range_func

        o = self.options
        start, end = float(task["start"]), float(task["end"])
        self.ydl.params["outtmpl"]["default"] = str(tmp).replace("%", "%%") + "/clip.%(ext)s"
        if o.sections:
            self.ydl.params["download_ranges"] = download_range_func(None, [(start, end)])
        try:
            info = self.ydl.extract_info(url, download=True, ie_key=self._extractor_for(url))
        except DownloadError as exc:
            page = self._error_page(url, exc)
            return classify_exception(exc, page)
        except Exception as exc:  # yt-dlp bugs, OS errors: per-clip, retried
            return classify_exception(exc)
        output = _output_file(info, tmp)
        if output is None:
            return media_failure("too_short", "yt-dlp reported success but wrote no file")
        expected = end - start if o.sections else None
        problem, media = self._check(output, expected, info, url, start, end)
        if problem is not None:
            return problem
        clips = self.root / CLIPS_DIR
        clips.mkdir(parents=True, exist_ok=True)
        final = clips / f"{task['clip_id']}{output.suffix}"
        size = output.stat().st_size
        os.replace(output, final)
        return {"bytes": size, "media_path": f"{CLIPS_DIR}/{final.name}", "duration": media.duration,
                **media_fields(media, final)}

    def _check(self, output: Path, expected: float | None, info: dict, url: str, start: float, end: float):
        o = self.options
        try:
            media = probe(output, timeout=o.timeout)
        except MediaError as exc:
            return media_failure("too_short", f"output unreadable: {first_line(exc, output)}"), None
        source_duration = info.get("duration")
        if expected is not None and source_duration:
            expected = max(0.0, min(end, float(source_duration)) - start)
        problem = check_clip(media, expected if expected is not None else (media.duration or 0.0),
                             o.tolerance if expected is not None else float("inf"))
        if problem == "too_short" and expected is not None and not source_duration and info.get("url"):
            # The source itself may end before the segment does (AudioSet has
            # such segments): ask the server how long the source is.
            try:
                source = probe(info["url"], timeout=o.timeout, extra_args=["-rw_timeout", str(int(o.timeout * 1e6))])
            except MediaError:
                source = None
            if source is not None and source.duration:
                expected = max(0.0, min(end, source.duration) - start)
                problem = check_clip(media, expected, o.tolerance)
        if problem is None:
            return None, media
        detail = {"no_video": "downloaded file has no video stream", "no_audio": "downloaded file has no audio stream"}
        message = detail.get(problem, f"duration {media.duration}s, expected {expected:.3f}s (+/-{o.tolerance}s)")
        return media_failure(problem, message), media

    def _error_page(self, url: str, exc: BaseException) -> str:
        """For a 403, read the error page (bot checks hide there); '' otherwise."""
        from yt_dlp.networking import Request

        from builder.fetch.errors import http_status_of

        status, _ = http_status_of(exc)
        if status != 403:
            return ""
        try:
            self.ydl.urlopen(Request(url, headers={"Range": "bytes=0-65535"})).close()
        except Exception as err:  # the expected path: HTTPError carrying the page
            response = getattr(err, "response", None)
            try:
                return response.read(65536).decode("utf-8", "replace") if response is not None else ""
            except Exception:
                return ""
        return ""

    def _record(self, task: dict[str, Any], status: str, failure: Failure | None = None,
                attempt: int = 0, seconds: float = 0.0, **extra: Any) -> dict[str, Any]:
        record = {"clip_id": task["clip_id"], "status": status, "attempt": attempt, "seconds": seconds,
                  "run_id": self.options.run_id, "error_class": failure.error_class if failure else "",
                  "key": task.get("key", ""),
                  "message": one_line(failure.message) if failure else "", "bytes": extra.pop("bytes", 0)}
        if failure is not None and failure.http_status is not None:
            record["http_status"] = failure.http_status
        record.update(extra)
        return self.log.append(record)


def _output_file(info: dict, tmp: Path) -> Path | None:
    for download in info.get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file() and Path(path).stat().st_size > 0:
            return Path(path)
    candidates = [p for p in tmp.iterdir() if p.is_file() and p.stat().st_size > 0 and not p.name.endswith(".part")]
    return candidates[0] if len(candidates) == 1 else None


# -- worker entry point (module level, so process pools and Ray can pickle it) ----------
_DOWNLOADER: ClipDownloader | None = None


def fetch_shard(tasks: list[dict[str, Any]], options: FetchOptions) -> list[dict[str, Any]]:
    """Fetch a shard of clips in this process; returns one final record per clip not halted."""
    global _DOWNLOADER
    if _DOWNLOADER is None or _DOWNLOADER.options != options:
        if _DOWNLOADER is not None:
            _DOWNLOADER.close()
        _DOWNLOADER = ClipDownloader(options)
    records = []
    for task in tasks:
        record = guarded_fetch(_DOWNLOADER, task)
        if record is not None:
            records.append(record)
    return records
