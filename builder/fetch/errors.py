"""Classify download failures: permanent, transient, or halt-the-run.

* permanent -- the clip is gone for this source (404/410, private, removed,
  account terminated, no audio or no video stream...): recorded, never retried,
  replaced from the reserve.
* transient -- timeouts, 5xx, connection resets, truncated output, a single
  429: retried with exponential backoff and jitter, and again on the next run.
* halt -- YouTube's "Sign in to confirm you're not a bot" (or any bot-check /
  CAPTCHA page): every further request burns the IP's reputation, so the run
  stops and tells the user to add cookies, a proxy or a lower rate. Bursts of
  429 are turned into a halt by :mod:`builder.fetch.rate`.

Messages are matched against YouTube's public wording as yt-dlp reports it;
HTTP statuses are read from the exception chain (``DownloadError.exc_info[1]``,
``ExtractorError.cause``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PERMANENT, TRANSIENT, HALT = "permanent", "transient", "halt"

BOT_CHECK_RE = re.compile(
    r"confirm you.{0,3}re not a bot|not a robot|are you a robot|unusual traffic|captcha"
    r"|attention required|verify (?:that )?you are (?:a )?human|bot[- ]check",
    re.IGNORECASE)

# (pattern, error class); first match wins, so narrower wording comes first.
_PERMANENT_MESSAGES: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), c) for p, c in (
        (r"sign in to confirm your age|age[- ]restricted|inappropriate for some users", "age_restricted"),
        (r"private video|video is private", "private"),
        (r"members[- ]only|join this channel", "members_only"),
        (r"account .{0,80}(?:terminated|closed)|has been terminated", "terminated"),
        (r"copyright|removed (?:by|for)|has been removed|no longer available|video has been deleted", "removed"),
        (r"not (?:made )?available in your country|geo[- ]?restrict", "geo_blocked"),
        (r"video unavailable|is unavailable|video does not exist", "unavailable"),
        (r"unsupported url", "unsupported_url"),
        (r"requested format is not available|no video formats found|only images are available", "no_format"),
        (r"premieres in|live event will begin|is_live|this live", "live"),
    ))

_TRANSIENT_MESSAGES: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), c) for p, c in (
        (r"timed? ?out|timeout", "timeout"),
        (r"connection (?:reset|refused|aborted)|remote end closed|broken pipe|reset by peer", "connection"),
        (r"incompleteread|bytes read|incomplete", "incomplete"),
        (r"ffmpeg exited with code", "download_failed"),
        (r"temporary failure|name resolution|network is unreachable|name or service not known"
         r"|nodename nor servname|no address associated|failed to resolve|no route to host", "network"),
    ))


# yt-dlp's warnings, by what they mean for the run (wording of yt_dlp/extractor/youtube/_video.py,
# yt_dlp/extractor/youtube/jsc/_director.py and yt_dlp/YoutubeDL.py); first match wins.
WARNING_CLASSES: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), c) for p, c in (
        (r"no supported javascript runtime", "js_runtime"),
        (r"remote components? .{0,120}(?:was|were) skipped|challenge solver .{0,60}script version .{0,80}"
         r"is not supported|no usable challenge solver", "ejs_missing"),
        (r"(?:n challenge|signature) solving failed", "challenge_failed"),
        (r"only images are available|requested format is not available", "no_formats"),
        (r"po token", "po_token"),
        (r"youtube said", "youtube_said"),
        (r"unable to download|http error|timed? ?out", "network"),
    ))
# Warnings that show yt-dlp cannot extract YouTube videos at all on this machine (not one video's problem).
SETUP_WARNINGS = ("js_runtime", "ejs_missing")


def warning_class(message: str) -> str:
    """The class of one yt-dlp warning (``"other"`` when none matches)."""
    for pattern, name in WARNING_CLASSES:
        if pattern.search(message):
            return name
    return "other"


@dataclass(frozen=True)
class Failure:
    kind: str                      # permanent | transient | halt
    error_class: str               # short machine-readable reason, e.g. "not_found", "http_5xx"
    message: str                   # one line for the log and the user
    http_status: int | None = None
    retry_after: float | None = None   # seconds, from a Retry-After header

    @property
    def retryable(self) -> bool:
        return self.kind == TRANSIENT


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps (yt-dlp's exc_info / cause, Python's __cause__)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        exc_info = getattr(item, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo.extend([getattr(item, "cause", None), item.__cause__, item.__context__])
    return seen


def http_status_of(exc: BaseException) -> tuple[int | None, float | None]:
    """The first HTTP status in the chain and its Retry-After (seconds), if any."""
    for item in exception_chain(exc):
        status = getattr(item, "status", None)
        response = getattr(item, "response", None)
        if isinstance(status, int) and 100 <= status <= 599:
            retry_after = None
            headers = getattr(response, "headers", None)
            if headers is not None:
                try:
                    retry_after = float(headers.get("Retry-After"))
                except (TypeError, ValueError):
                    retry_after = None
            return status, retry_after
    return None, None


def one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text.replace("ERROR: ", "")).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_message(message: str, http_status: int | None = None, page_text: str = "",
                     retry_after: float | None = None) -> Failure:
    """Classify by HTTP status first, then by the wording of the error (and of an error page)."""
    text = one_line(message)
    if BOT_CHECK_RE.search(message) or (page_text and BOT_CHECK_RE.search(page_text)):
        return Failure(HALT, "bot_check", text, http_status)
    if http_status is not None:
        if http_status in (404, 410):
            return Failure(PERMANENT, "not_found", text, http_status)
        if http_status == 429:
            return Failure(TRANSIENT, "http_429", text, http_status, retry_after)
        if http_status == 408:
            return Failure(TRANSIENT, "timeout", text, http_status)
        if http_status >= 500:
            return Failure(TRANSIENT, "http_5xx", text, http_status, retry_after)
        if http_status == 403:
            # Plain 403s on YouTube media URLs are usually expired/throttled
            # signatures that a fresh extraction fixes: retry, don't drop.
            return Failure(TRANSIENT, "http_403", text, http_status)
        if http_status in (401, 451):
            return Failure(PERMANENT, f"http_{http_status}", text, http_status)
        if 400 <= http_status < 500:
            return Failure(PERMANENT, f"http_{http_status}", text, http_status)
    for pattern, error_class in _PERMANENT_MESSAGES:
        if pattern.search(message):
            return Failure(PERMANENT, error_class, text, http_status)
    for pattern, error_class in _TRANSIENT_MESSAGES:
        if pattern.search(message):
            return Failure(TRANSIENT, error_class, text, http_status)
    # Unknown errors are retried (a bounded number of times): dropping a clip
    # for a reason we cannot name would change the dataset silently.
    return Failure(TRANSIENT, "error", text, http_status)


def classify_exception(exc: BaseException, page_text: str = "") -> Failure:
    """Classify any exception raised by a yt-dlp download."""
    status, retry_after = http_status_of(exc)
    messages: list[str] = []
    for item in exception_chain(exc):
        text = one_line(str(item), limit=10_000)
        if text and not any(text in earlier for earlier in messages):
            messages.append(text)
    return classify_message(" | ".join(messages) or type(exc).__name__, status, page_text, retry_after)


def media_failure(problem: str, detail: str) -> Failure:
    """Failure for an output that downloaded but fails the ffprobe check (see media.check_clip)."""
    if problem in ("no_video", "no_audio"):
        return Failure(PERMANENT, problem, detail)
    return Failure(TRANSIENT, "incomplete", detail)
