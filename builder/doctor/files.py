"""The files a fetch reads and writes: the cookies file, and the disk under the media root."""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from builder.doctor.report import FAIL, OK, SKIP, WARN, Check
from builder.manifest.media_root import CLIPS_DIR

# MozillaCookieJar's (and so yt-dlp's) first-line test of a cookies.txt.
NETSCAPE_HEADER = re.compile(r"#( Netscape)? HTTP Cookie File")
HTTPONLY_PREFIX = "#HttpOnly_"
YOUTUBE_DOMAINS = ("youtube.com", "google.com")
# A 10 s clip at the 720p cap as fetch writes it (H.264 CRF 18, AAC): about 5 MB on AudioSet videos;
# measured on the media root's own clips once it holds some.
CLIP_BYTES_720P = 5_000_000
GB = 1e9


@dataclass(frozen=True)
class Cookie:
    domain: str
    name: str
    expires: int            # Unix time; 0 = a session cookie (no expiry)
    line: int


def parse_cookies(path: Path) -> list[Cookie]:
    """Cookies of a Netscape cookies.txt, checked the way yt-dlp loads it; ValueError names the line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    if not lines or not NETSCAPE_HEADER.match(lines[0]):
        if text.lstrip()[:1] in ("[", "{"):
            raise ValueError("line 1: this is JSON, not a Netscape cookies.txt (export it in Netscape format)")
        raise ValueError("line 1: expected '# Netscape HTTP Cookie File' (a Netscape-format cookies.txt)")
    cookies = []
    for number, raw in enumerate(lines, start=1):
        line = raw[len(HTTPONLY_PREFIX):] if raw.startswith(HTTPONLY_PREFIX) else raw
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise ValueError(f"line {number}: {len(fields)} tab-separated fields, expected 7 "
                             "(domain, subdomains, path, secure, expires, name, value)")
        if fields[4] and not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", fields[4]):
            raise ValueError(f"line {number}: expiry {fields[4]!r} is not a Unix time")
        cookies.append(Cookie(fields[0].lstrip("."), fields[5], int(float(fields[4] or 0)), number))
    return cookies


def check_cookies(path: Path | None, now: float | None = None) -> Check:
    if path is None:
        return Check("cookies", SKIP, "none given (--cookies FILE: YouTube's bot checks often need a signed-in "
                                      "browser's cookies)")
    if not os.access(path, os.R_OK) or not path.is_file():
        return Check("cookies", FAIL, f"{path}: not found or not readable")
    try:
        cookies = parse_cookies(path)
    except (OSError, ValueError) as exc:
        return Check("cookies", FAIL, f"{path}: {exc}")
    now = time.time() if now is None else now
    youtube = [c for c in cookies if any(c.domain == d or c.domain.endswith("." + d) for d in YOUTUBE_DOMAINS)]
    if not youtube:
        return Check("cookies", WARN, f"{path}: {len(cookies)} cookie(s), none for youtube.com: export them "
                                      "from a browser signed in to YouTube")
    expired = [c for c in youtube if c.expires and c.expires < now]
    if len(expired) == len(youtube):
        last = max(c.expires for c in expired)
        return Check("cookies", FAIL, f"{path}: every youtube.com cookie expired (the last on "
                                      f"{_day(last)}): export fresh ones")
    lasting = [c.expires for c in youtube if c.expires and c.expires >= now]
    until = f", the first expires {_day(min(lasting))}" if lasting else ""
    note = f"; {len(expired)} expired" if expired else ""
    return Check("cookies", OK, f"{path}: {len(youtube)} youtube.com cookie(s){until}{note}")


def _day(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")


def clip_bytes(root: Path, max_height: int) -> tuple[float, str]:
    """Bytes per clip: the mean of the clips already under the root, else the 720p estimate scaled by area."""
    sizes = [p.stat().st_size for p in (root / CLIPS_DIR).glob("*") if p.is_file()] if root.is_dir() else []
    if sizes:
        return sum(sizes) / len(sizes), f"{len(sizes)} clips there"
    return CLIP_BYTES_720P * min(1.0, (max_height / 720) ** 2), f"~{CLIP_BYTES_720P * 1e-6:.0f} MB per 720p clip"


def clips_to_fetch(manifest: pd.DataFrame, root: Path) -> int:
    """Selected clips without a file under the root yet (unavailable ones are replaced one for one)."""
    selected = manifest["selected"].astype(str).str.lower().isin(("1", "true", "yes")) \
        if "selected" in manifest.columns else pd.Series(True, index=manifest.index)
    folder = root / CLIPS_DIR
    have = {p.stem for p in folder.glob("*")} if folder.is_dir() else set()
    return int(sum(1 for c in manifest.loc[selected, "clip_id"] if c not in have))


def check_disk(root: Path, manifest: pd.DataFrame | None, max_height: int, source: str = "") -> Check:
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    where = str(root) if existing == root else f"{root} (not created yet; on {existing.resolve()})"
    if manifest is None:
        return Check("disk", OK, f"{free / GB:.1f} GB free at {where}")
    count = clips_to_fetch(manifest, root)
    per_clip, basis = clip_bytes(root, max_height)
    need = count * per_clip
    text = f"{free / GB:.1f} GB free at {where}; {count} clips of {source or 'the manifest'} to fetch need " \
           f"~{need / GB:.1f} GB ({basis})"
    if free < need:
        return Check("disk", FAIL, text + ": free some space or choose another --root")
    if free < 1.2 * need:
        return Check("disk", WARN, text + ": little room for the later stages (audio, frames)")
    return Check("disk", OK, text)
