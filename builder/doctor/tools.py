"""The programs and packages a fetch runs: FFmpeg, yt-dlp, its JavaScript runtime and EJS scripts, Ray."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

from builder.doctor.report import FAIL, OK, SKIP, WARN, Check
from builder.errors import InputError
from builder.fetch.runtime import EJS_PACKAGE, EJS_WIKI, ejs_version, inspect_js_runtime
from builder.media.ffmpeg import FFMPEG

# fetch re-encodes at the cuts (force_keyframes_at_cuts) into H.264 with -preset/-crf, and AAC audio.
FETCH_ENCODERS = ("libx264", "aac")
# The first yt-dlp that solves YouTube's challenges with an external runtime and the EJS scripts.
MIN_YTDLP = dt.date(2025, 11, 12)
UPGRADE = 'pip install -U "yt-dlp[default]"'


def _run(argv: list[str], timeout: float = 30.0) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def check_program(name: str, binary: str) -> Check:
    """ffmpeg / ffprobe: found, and its version."""
    path = shutil.which(binary)
    if path is None:
        return Check(name, FAIL, f"{binary!r} not found on PATH: install FFmpeg (Debian/Ubuntu: apt install ffmpeg; "
                                 f"or point LLINET_{name.upper()} at the executable)")
    out = _run([path, "-version"])
    if out is None:
        return Check(name, FAIL, f"{path} -version failed: a broken FFmpeg install")
    words = out.split()
    version = words[2] if len(words) > 2 and words[1] == "version" else "(unknown version)"
    return Check(name, OK, f"{version} ({path})")


def check_encoders(binary: str = FFMPEG) -> Check:
    path = shutil.which(binary)
    if path is None:
        return Check("encoders", FAIL, "no ffmpeg to ask (see the ffmpeg line)")
    out = _run([path, "-hide_banner", "-encoders"])
    if out is None:
        return Check("encoders", FAIL, f"{path} -encoders failed")
    names = {m.group(1) for m in re.finditer(r"^\s*[VAS][\w.]{5}\s+(\S+)", out, flags=re.M)}
    missing = [e for e in FETCH_ENCODERS if e not in names]
    if missing:
        return Check("encoders", FAIL, f"this FFmpeg lacks {', '.join(missing)} (fetch writes H.264/AAC): "
                                       "install a full FFmpeg build (Debian/Ubuntu: apt install ffmpeg)")
    return Check("encoders", OK, ", ".join(FETCH_ENCODERS))


def release_date(version: str) -> dt.date | None:
    """yt-dlp versions are release dates: 2026.10.26 (nightlies add .HHMMSS)."""
    match = re.match(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})", version)
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups()))
    except ValueError:
        return None


def check_ytdlp(today: dt.date | None = None, max_age_days: int = 60) -> Check:
    """yt-dlp's version; a warning when it is older than ``max_age_days`` (YouTube breaks old releases)."""
    try:
        from yt_dlp.version import __version__ as version
    except ImportError:
        return Check("yt-dlp", FAIL, f"not installed: {UPGRADE}")
    released = release_date(version)
    if released is None:
        return Check("yt-dlp", WARN, f"{version}: not a dated release, its age is unknown")
    if released < MIN_YTDLP:
        return Check("yt-dlp", FAIL, f"{version} is older than {MIN_YTDLP:%Y.%m.%d}, the first release that "
                                     f"solves YouTube's JavaScript challenges: {UPGRADE}")
    age = ((today or dt.date.today()) - released).days
    if age > max_age_days:
        return Check("yt-dlp", WARN, f"{version} is {age} days old; YouTube breaks old releases within weeks: "
                                     f"{UPGRADE}")
    return Check("yt-dlp", OK, f"{version} ({age} days old)")


def check_js_runtime(spec: str | None) -> Check:
    try:
        report = inspect_js_runtime(spec)
    except InputError as exc:
        return Check("js runtime", FAIL, str(exc))
    where = f" ({report.path})" if report.path else ""
    if report.version is None:
        looked = f"{report.name} next to this Python or on PATH"
        if report.path:         # yt-dlp takes a folder to mean the runtime's executable inside it
            looked = str(Path(report.path) / report.name) if Path(report.path).is_dir() else report.path
        return Check("js runtime", FAIL, f"no {report.name} found ({looked}); YouTube extraction needs a "
                                         "JavaScript runtime: pip install deno (llinet's setup does), or "
                                         f"--js-runtime node:/path/to/node; see {EJS_WIKI}")
    if not report.supported:
        return Check("js runtime", FAIL, f"{report.name} {report.version}{where} is older than yt-dlp supports: "
                                         "upgrade it (pip install -U deno)")
    return Check("js runtime", OK, f"{report.name} {report.version}{where}")


def wanted_ejs() -> str | None:
    """The yt-dlp-ejs version this yt-dlp asks for in its ``default`` extra (it pins one exactly)."""
    try:
        requires = importlib.metadata.requires("yt-dlp") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for line in requires:
        match = re.match(r"^yt-dlp-ejs\s*==\s*([\w.]+)", line.replace("_", "-"))
        if match and "default" in line:
            return match.group(1)
    return None


def check_ejs() -> Check:
    installed, wanted = ejs_version(), wanted_ejs()
    if installed is None:
        return Check("ejs", FAIL, f"the EJS challenge-solver scripts ({EJS_PACKAGE}) are not installed: {UPGRADE}")
    if wanted and installed != wanted:
        return Check("ejs", FAIL, f"{EJS_PACKAGE} {installed} installed, this yt-dlp wants {wanted}: {UPGRADE}")
    return Check("ejs", OK, f"{EJS_PACKAGE} {installed}")


def check_ray(distributor: str) -> Check:
    if distributor != "ray":
        return Check("ray", SKIP, f"not needed (--distributor {distributor})")
    try:
        import ray
    except ImportError:
        return Check("ray", FAIL, "--distributor ray needs Ray: pip install \"llinet[ray]\"")
    return Check("ray", OK, f"ray {ray.__version__}")
