"""What ``llinet-build doctor`` checks, in order: the tools, yt-dlp's setup, the files, Ray, YouTube itself."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.doctor.files import check_cookies, check_disk
from builder.doctor.online import check_online
from builder.doctor.report import FAIL, SKIP, Check
from builder.doctor.tools import check_ejs, check_encoders, check_js_runtime, check_program, check_ray, check_ytdlp
from builder.errors import LlinetError
from builder.fetch.options import YOUTUBE_TEMPLATE
from builder.manifest.schema import SELECTION_FILE, read_manifest
from builder.media.ffmpeg import FFMPEG, FFPROBE
from builder.resources import committed_manifests


@dataclass(frozen=True)
class DoctorOptions:
    root: Path = Path("media")                  # media root the fetch will write (disk space)
    manifests: tuple[Path, ...] = ()            # manifest folders or CSVs; () = the committed INSTRUMENT-32 set
    cookies: Path | None = None
    js_runtime: str | None = None               # as fetch's --js-runtime
    extractor_args: tuple[str, ...] = ()
    cache_dir: Path | None = None
    proxy: str | None = None
    url_template: str = YOUTUBE_TEMPLATE
    extractor: str | None = None
    max_height: int = 720
    distributor: str = "local"
    online: bool = False                        # extract one AudioSet video's formats for real
    timeout: float = 15.0
    max_ytdlp_age_days: int = 60
    today: dt.date | None = None                # None = today (a fixed day in tests)


def load_selection(paths: tuple[Path, ...]) -> tuple[pd.DataFrame, str]:
    """The clips a fetch of these manifests starts with (each folder's clips.csv, or the CSVs)."""
    paths = paths or (committed_manifests(),)
    frames = [read_manifest(p / SELECTION_FILE if p.is_dir() else p) for p in paths]
    return pd.concat(frames, ignore_index=True), ", ".join(map(str, paths))


def run_checks(o: DoctorOptions) -> list[Check]:
    cookies = check_cookies(o.cookies)
    checks = [check_program("ffmpeg", FFMPEG), check_program("ffprobe", FFPROBE), check_encoders(FFMPEG),
              check_ytdlp(o.today, o.max_ytdlp_age_days), check_js_runtime(o.js_runtime), check_ejs(), cookies]
    try:
        manifest, source = load_selection(o.manifests)
    except (LlinetError, OSError) as exc:
        checks.append(Check("manifest", FAIL, str(exc)))
        manifest, source = None, ""
    checks.append(check_disk(Path(o.root), manifest, o.max_height, source))
    checks.append(check_ray(o.distributor))
    if not o.online:
        checks.append(Check("online", SKIP, "not asked (--online extracts one AudioSet video's formats)"))
    elif manifest is None or manifest.empty:
        checks.append(Check("online", SKIP, "no manifest to take a video from"))
    else:
        clips = list(zip(manifest["ytid"].astype(str), manifest["clip_id"].astype(str), strict=True))
        usable_cookies = o.cookies if cookies.verdict != FAIL else None
        checks.append(check_online(clips, url_template=o.url_template, extractor=o.extractor,
                                   max_height=o.max_height, js_runtime=o.js_runtime,
                                   extractor_args=o.extractor_args, cache_dir=o.cache_dir, proxy=o.proxy,
                                   cookies=usable_cookies, timeout=o.timeout))
    return checks
