"""Fetch options, URL templates and the advice printed when a run halts.

Every URL is built here from a validated YTID by plain substitution into a
checked template (never ``str.format``, which could reach attributes).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.errors import InputError
from builder.fetch.runtime import EJS_WIKI, parse_extractor_args, parse_js_runtime
from builder.manifest.ids import validate_clip_id, validate_ytid
from builder.manifest.media_root import CLIPS_DIR, TMP_DIR, status_log_name  # noqa: F401 - re-exported for fetch

YOUTUBE_TEMPLATE = "https://www.youtube.com/watch?v={ytid}"
TEMPLATE_FIELDS = ("{ytid}", "{clip_id}")
YOUTUBE_HOSTS = {"www.youtube.com", "youtube.com", "m.youtube.com", "music.youtube.com", "youtu.be"}
DIRECT_MEDIA_SUFFIXES = (".mp4", ".m4v", ".webm", ".mkv", ".mov", ".m4a", ".mp3", ".ogg", ".opus", ".flv", ".avi")
STATUS_LOG = status_log_name("fetch")
# Re-encoding at the cuts (force_keyframes_at_cuts) is FFmpeg's work per clip;
# a keyframe every second makes the frames stage's exact seeks cheap, and
# "veryfast" keeps the H.264 re-encode a fraction of the download time.
DEFAULT_OUTPUT_ARGS = ("-force_key_frames", "expr:gte(t,n_forced)", "-preset:v", "veryfast", "-crf", "18")
ADVICE = {
    "bot_check": ("YouTube asked to confirm this is not a bot. Pass a cookies file of a signed-in "
                  "browser session (--cookies cookies.txt), use a proxy (--proxy), and lower the rate "
                  "(--max-rate 0.2 --sleep-requests 1), then rerun the same command to resume."),
    "rate_limited": ("the server answered HTTP 429 (too many requests) repeatedly. Wait before "
                     "retrying, lower the rate (--max-rate, --sleep-requests, fewer --workers) or use "
                     "cookies/a proxy, then rerun the same command to resume."),
    # yt-dlp cannot extract YouTube videos at all: every further clip would fail the same way.
    "js_runtime": ("yt-dlp found no JavaScript runtime, which YouTube extraction needs. llinet's setup "
                   "installs Deno into the venv (pip install deno); or name another runtime with "
                   "--js-runtime node:/path/to/node (node, quickjs and bun work too). "
                   f"`llinet-build doctor` checks the setup; see {EJS_WIKI}. Then rerun the same command "
                   "to resume."),
    "ejs_missing": ("yt-dlp's challenge-solver scripts (EJS) are not installed: pip install -U "
                    "\"yt-dlp[default]\" (`llinet-build doctor` checks the setup), then rerun the same "
                    "command to resume."),
    "challenge_failed": ("yt-dlp could not solve YouTube's JavaScript challenge: YouTube has most likely "
                         "changed its player and this yt-dlp is too old. Upgrade it with its solver scripts "
                         "(pip install -U \"yt-dlp[default]\"), check with `llinet-build doctor`, then "
                         "rerun the same command to resume."),
    "no_formats": ("the first clips of this run had no downloadable formats at all, so YouTube extraction "
                   "is not working here (not the videos). Read the yt-dlp warnings above, upgrade yt-dlp "
                   "(pip install -U \"yt-dlp[default]\"), run `llinet-build doctor --online`, or try "
                   "another player client (--extractor-args youtube:player_client=default,mweb); then "
                   "rerun the same command to resume."),
}


@dataclass(frozen=True)
class FetchOptions:
    root: Path                                  # media root: clips/, fetch_status.jsonl, .tmp/
    url_template: str = YOUTUBE_TEMPLATE        # {ytid} (and optionally {clip_id}) are substituted
    max_height: int = 720
    sections: bool = True                       # False: the URL already serves just the segment
    cookies: Path | None = None
    proxy: str | None = None
    sleep_requests: float = 0.0                 # yt-dlp's sleep between extractor requests
    max_rate: float = 0.0                       # clip downloads started per second per node (0 = no limit)
    workers: int = 1
    retries: int = 3                            # extra attempts after a transient failure
    backoff: float = 2.0                        # base seconds of the exponential backoff
    max_backoff: float = 120.0
    timeout: float = 30.0                       # socket / FFmpeg I/O timeout, seconds
    tolerance: float = 0.5                      # allowed |duration - requested| in seconds
    fill: bool = True                           # replace unavailable clips from the reserve
    cap: int | None = None                      # per-class target; None = initially selected count
    burst_429: int = 3                          # this many 429s ...
    burst_window: float = 300.0                 # ... within this many seconds halt the run
    distributor: str = "local"
    ray_address: str | None = None
    shard_size: int | None = None
    extractor: str | None = None                # "module:Class" yt-dlp extractor to force (mirrors, tests)
    rate_state_dir: Path | None = None
    progress: bool = True
    output_args: tuple[str, ...] = DEFAULT_OUTPUT_ARGS
    js_runtime: str | None = None               # "NAME[:PATH]"; None = the Deno installed with llinet
    extractor_args: tuple[str, ...] = ()        # yt-dlp's --extractor-args, e.g. "youtube:player_client=mweb"
    cache_dir: Path | None = None               # yt-dlp's cache; None = its folder in the user cache dir
    run_id: str = ""                            # set by the stage; marks this run's records

    def __post_init__(self) -> None:
        check_template(self.url_template)
        if self.max_height < 1:
            raise InputError(f"--height must be positive, got {self.max_height}")
        if self.retries < 0 or self.workers < 1:
            raise InputError("--retries must be >= 0 and --workers >= 1")
        if self.distributor not in ("local", "ray"):
            raise InputError(f"--distributor must be local or ray, got {self.distributor!r}")
        if self.proxy and self.proxy.lower().startswith("socks") and self.sections:
            # FFmpeg downloads the sections and ignores SOCKS proxies: it would connect directly.
            raise InputError("SOCKS proxies cannot carry FFmpeg's section downloads; use an HTTP(S) proxy")
        if self.cookies is not None and not Path(self.cookies).is_file():
            raise InputError("cookies file not found", file=self.cookies)
        if self.js_runtime is not None:
            parse_js_runtime(self.js_runtime)
        parse_extractor_args(self.extractor_args)


def check_template(template: str) -> None:
    """A URL template may contain only the fields {ytid} and {clip_id}, and must name the video."""
    rest = template
    for name in TEMPLATE_FIELDS:
        rest = rest.replace(name, "")
    if "{" in rest or "}" in rest:
        raise InputError(f"URL template {template!r}: only {{ytid}} and {{clip_id}} may appear in braces")
    if not any(name in template for name in TEMPLATE_FIELDS):
        raise InputError(f"URL template {template!r} must contain {{ytid}} or {{clip_id}}")
    if "://" not in template:
        raise InputError(f"URL template {template!r} must be an absolute URL (scheme://...)")


def build_url(template: str, ytid: str, clip_id: str) -> str:
    """Substitute validated IDs into the template (plain replacement, never str.format)."""
    validate_ytid(ytid)
    validate_clip_id(clip_id)
    return template.replace("{ytid}", ytid).replace("{clip_id}", clip_id)
