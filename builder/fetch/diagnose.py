"""What a failed clip download really means, asked before the failure is recorded.

A download can fail for reasons that are not the clip's:

* the machine -- a full disk, a read-only or vanished media root, FFmpeg gone:
  :class:`~builder.io.environment.EnvironmentFailure` stops the run and
  nothing is recorded against the clip (a rerun after the fix resumes);
* the mirror -- a server that ignores HTTP Range makes FFmpeg's section
  download read the wrong bytes (``ffmpeg exited with code 1``) on every clip:
  the run halts and says the mirror must honour Range;
* the source file -- complete, but not media at all (``Invalid data found``):
  permanent ``corrupt_source``, so it is replaced and never retried.

The checks run only after a failure, so a healthy run pays nothing. The mirror
and source checks apply to direct media URLs (yt-dlp's generic extractor);
YouTube's own media servers honour Range.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.fetch.errors import HALT, PERMANENT, TRANSIENT, Failure, one_line
from builder.fetch.options import CLIPS_DIR
from builder.fetch.rate import request_halt
from builder.io.environment import (
    EnvironmentFailure,
    disk_problem,
    environment_guard,
    missing_tools,
    root_problem,
    stop_message,
)
from builder.manifest.ids import validate_clip_id
from builder.media.ffmpeg import FFMPEG, FFPROBE, MediaError, MediaInfo, probe

RANGE_IGNORED = "range_ignored"
CORRUPT_SOURCE = "corrupt_source"
UNDECODABLE = "Invalid data found when processing input"   # FFmpeg's AVERROR_INVALIDDATA text
RANGE_ADVICE = ("fetch cuts each segment out of the video with HTTP Range requests. Serve the files with a "
                "server that honours Range (any static web server: nginx, Apache, python -m http.server), or "
                "use --whole-file if the mirror serves just the 10 s segments; then rerun the same command.")


def media_fields(media: MediaInfo, path: Path) -> dict[str, str]:
    """What a fetched file is, for its status record and the manifest: container and codecs."""
    return {"container": path.suffix.lstrip(".").lower(),
            "vcodec": media.video.codec_name if media.video else "",
            "acodec": media.audio.codec_name if media.audio else ""}


def discard_stale(root: Path, clip_id: str) -> None:
    """Remove the files of ``clip_id`` fetched for another segment or format (the status log says so)."""
    for path in (root / CLIPS_DIR).glob(f"{validate_clip_id(clip_id)}.*"):
        if path.is_file() and not path.name.startswith("."):
            path.unlink(missing_ok=True)


def guarded_fetch(downloader: Any, task: dict[str, Any]) -> dict[str, Any] | None:
    """``downloader.fetch(task)``; a vanished media root, or an OS error that is the machine's (a full
    disk when writing a record, a read-only root), raises :class:`EnvironmentFailure` instead."""
    root = Path(downloader.root)
    problem = root_problem(root)
    if problem is not None:
        raise EnvironmentFailure(stop_message(problem, root, f"fetching {task['clip_id']}"))
    with environment_guard(root, f"fetching {task['clip_id']}"):
        return downloader.fetch(task)


def machine_check(root: Path, work: Path, doing: str) -> None:
    """Raise :class:`EnvironmentFailure` if the media root, its disk or FFmpeg is the problem.

    ``work`` is the clip's work folder, still holding the partial output: on a full disk that
    output is what fills it, so the check must run before the folder is removed."""
    problem = root_problem(root)
    if problem is None:
        problem = disk_problem(work if work.is_dir() else root)
    if problem is None:
        missing = missing_tools(FFMPEG, FFPROBE)
        if missing:
            problem = f"{' and '.join(missing)} not found on PATH any more"
    if problem is not None:
        raise EnvironmentFailure(stop_message(problem, root, doing))


def diagnose(downloader: Any, failure: Failure, task: dict[str, Any], url: str, work: Path) -> Failure:
    """The failure to record for one attempt (maybe reclassified); raises on a machine failure."""
    if failure.http_status is not None:
        return failure            # the server answered: not the disk, not the source's bytes
    machine_check(Path(downloader.root), work, f"fetching {task['clip_id']}")
    if failure.kind != TRANSIENT or downloader.ie_key != "Generic":
        return failure
    options = downloader.options
    if not options.sections:
        if UNDECODABLE in failure.message and failure.message.startswith("output unreadable"):
            # yt-dlp checks the byte count of a whole download: the file is complete, and not media.
            return Failure(PERMANENT, CORRUPT_SOURCE, f"the source is not a readable media file: {failure.message}")
        return failure
    if failure.error_class != "download_failed":
        return failure
    honoured = range_honoured(downloader.ydl, url)
    if honoured is False:
        host = url.split("://", 1)[-1].split("/", 1)[0]
        message = (f"the server {host} ignores HTTP Range requests (it answered a ranged request with 200 and "
                   "the whole file), so FFmpeg cannot cut the segments")
        # The first halt reason is the one reported; the caller's generic halt advice comes second.
        request_halt(downloader.root, RANGE_IGNORED, message, RANGE_ADVICE)
        return Failure(HALT, RANGE_IGNORED, message)
    if honoured and source_undecodable(url, options.timeout):
        return Failure(PERMANENT, CORRUPT_SOURCE, f"the source is not a readable media file ({UNDECODABLE})")
    return failure


def range_honoured(ydl: Any, url: str) -> bool | None:
    """Does the server answer ``Range: bytes=1-1`` with 206? None when it could not be asked."""
    from yt_dlp.networking import Request

    try:
        response = ydl.urlopen(Request(url, headers={"Range": "bytes=1-1"}))
    except Exception:     # 4xx/5xx, timeouts: no answer about Range
        return None
    try:
        return int(response.status) == 206 or bool(response.headers.get("Content-Range"))
    finally:
        response.close()   # a server that ignores Range is sending the whole file: stop reading


def source_undecodable(url: str, timeout: float) -> bool:
    """ffprobe on the URL itself says the bytes are not media (not a timeout, not a refused connection)."""
    try:
        probe(url, timeout=timeout, extra_args=["-rw_timeout", str(int(timeout * 1e6))])
    except MediaError as exc:
        return UNDECODABLE in one_line(str(exc), limit=10_000)
    return False

