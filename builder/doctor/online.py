"""``doctor --online``: extract one AudioSet video's formats for real, as fetch would (nothing is downloaded).

Offline (no DNS, refused connection, timeout) the item says "cannot reach"
and is a warning, not a failure: the machine may simply not be the one that
downloads.
"""
from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from builder.doctor.report import FAIL, OK, WARN, Check
from builder.fetch.errors import PERMANENT, SETUP_WARNINGS, classify_exception, one_line, warning_class
from builder.fetch.options import YOUTUBE_HOSTS, build_url
from builder.fetch.runtime import default_cache_dir, js_runtimes_param, parse_extractor_args

UNREACHABLE = ("network", "connection", "timeout")
BROKEN_WARNINGS = (*SETUP_WARNINGS, "challenge_failed")
MAX_VIDEOS = 3          # AudioSet videos disappear: try a few before giving up


class _Collect:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    info = error = debug

    def warning(self, msg: str) -> None:
        self.warnings.append(one_line(msg, limit=600))


def probe_params(*, js_runtime: str | None, extractor_args: tuple[str, ...], cache_dir: Path | None,
                 proxy: str | None, cookies: Path | None, timeout: float, logger: Any) -> dict[str, Any]:
    """fetch's extraction parameters (runtime, extractor arguments, cache, proxy, cookies), no download."""
    params: dict[str, Any] = {
        "quiet": True, "noprogress": True, "logger": logger, "skip_download": True, "noplaylist": True,
        "socket_timeout": timeout, "retries": 0, "extractor_retries": 0,
        "cachedir": str(cache_dir if cache_dir is not None else default_cache_dir()),
        "js_runtimes": js_runtimes_param(js_runtime),
    }
    if extractor_args:
        params["extractor_args"] = parse_extractor_args(extractor_args)
    if proxy:
        params["proxy"] = proxy
    if cookies is not None:
        params["cookiefile"] = str(cookies)
    return params


def check_online(clips: list[tuple[str, str]], *, url_template: str, extractor: str | None, max_height: int,
                 **params: Any) -> Check:
    """Extract the formats of the first available video of ``clips`` ((ytid, clip_id) pairs)."""
    import yt_dlp
    from yt_dlp.utils import DownloadError

    logger = _Collect()
    with tempfile.TemporaryDirectory(prefix="llinet-doctor-") as tmp:
        if params.get("cookies") is not None:     # yt-dlp writes the jar back: work on a copy
            params["cookies"] = Path(shutil.copyfile(params["cookies"], Path(tmp) / "cookies.txt"))
        with yt_dlp.YoutubeDL(probe_params(logger=logger, **params)) as ydl:
            ie_key = _ie_key(ydl, url_template, extractor)
            gone = []
            for ytid, clip_id in clips[:MAX_VIDEOS]:
                url = build_url(url_template, ytid, clip_id)
                logger.warnings.clear()
                try:
                    info = ydl.extract_info(url, download=False, ie_key=ie_key)
                except DownloadError as exc:
                    failure = classify_exception(exc)
                    if failure.error_class in UNREACHABLE:
                        host = url.split("://", 1)[-1].split("/", 1)[0]
                        said = one_line(failure.message, limit=160)
                        return Check("online", WARN, f"cannot reach {host}; not checked ({said})")
                    if failure.kind == PERMANENT and failure.error_class != "no_format":
                        gone.append(f"{ytid} ({failure.error_class})")
                        continue
                    return Check("online", FAIL, f"{ytid}: {failure.message}{_warned(logger.warnings)}")
                return _judge(ytid, info, logger.warnings, max_height)
    return Check("online", WARN, f"the videos tried are all unavailable: {', '.join(gone)}; nothing checked")


def _ie_key(ydl: Any, url_template: str, extractor: str | None) -> str | None:
    if extractor:
        module_name, _, class_name = extractor.partition(":")
        ie = getattr(importlib.import_module(module_name), class_name)()
        ydl.add_info_extractor(ie)
        return str(ie.ie_key())
    host = url_template.split("://", 1)[-1].split("/", 1)[0].split(":")[0].lower()
    return "Youtube" if host in YOUTUBE_HOSTS else None


def _warned(warnings: list[str]) -> str:
    return f" (yt-dlp warned: {warnings[0]})" if warnings else ""


def _judge(ytid: str, info: dict, warnings: list[str], max_height: int) -> Check:
    broken = [w for w in warnings if warning_class(w) in BROKEN_WARNINGS]
    if broken:
        return Check("online", FAIL, f"{ytid}: {broken[0]}")
    formats = info.get("formats") or []
    video = [f for f in formats if f.get("vcodec") not in (None, "none") and (f.get("height") or 0) <= max_height]
    audio = [f for f in formats if f.get("acodec") not in (None, "none")]
    if not video or not audio:
        missing = " and ".join(n for n, fs in (("video", video), ("audio", audio)) if not fs)
        return Check("online", FAIL, f"{ytid}: {len(formats)} formats, no {missing} to download "
                                     f"(at most {max_height}p){_warned(warnings)}")
    best = max(f.get("height") or 0 for f in video)
    note = f"; {len(warnings)} yt-dlp warning(s), first: {warnings[0]}" if warnings else ""
    return Check("online", OK if not warnings else WARN,
                 f"{ytid}: {len(formats)} formats, best video {best}p (cap {max_height}p) + audio{note}")
