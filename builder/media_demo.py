"""Offline media demo: fetch -> trim -> frames on locally generated videos.

Makes a few synthetic "YouTube videos" (several codecs; one missing, so the
reserve fills in), serves them from a loopback HTTP server that honours Range
requests (yt-dlp's section downloads need it; ``python -m http.server`` does
not support Range), and runs the three real stages on them. Meant for
``llinet-build demo`` and for trying the pipeline without network access.
"""
from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from builder.fetch import fetch
from builder.fetch_options import FetchOptions
from builder.frames import FrameOptions, frames
from builder.ids import make_clip_id
from builder.manifest import write_manifest
from builder.media_synth import SynthSpec, synth_clip
from builder.trim import TrimOptions, trim

CHUNK = 1 << 16
# (ytid, class, initially selected, spec or None for "video is gone")
DEMO_VIDEOS = (
    ("demoBanjo01", "Banjo", True, SynthSpec(duration=12.0, width=320, height=180, fps=25, loud=(5.0, 8.0))),
    ("demoBanjo02", "Banjo", True, None),
    ("demoBanjo03", "Banjo", False, SynthSpec(duration=12.0, width=256, height=144, fps=15, vcodec="mpeg4",
                                              acodec="libmp3lame", sample_rate=22050, channels=1)),
    ("demoTabla01", "Tabla", True, SynthSpec(duration=12.0, width=192, height=108, fps=12, vcodec="libvpx-vp9",
                                             acodec="libopus", sample_rate=48000)),
    ("demoTabla02", "Tabla", True, SynthSpec(duration=12.0, width=180, height=320, fps=25, loud=(1.0, 4.0))),
)


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves the files of one folder (no subfolders) with single-range support."""

    server: "_FolderServer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        name = self.path.split("?", 1)[0].lstrip("/")
        path = self.server.folder / name
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith(".") or not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        first, last, status = 0, size - 1, 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and (match[1] or match[2]):
            if match[1]:
                first, last = int(match[1]), min(int(match[2]) if match[2] else size - 1, size - 1)
            else:
                first = max(0, size - int(match[2]))
            if first >= size or last < first:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if not send_body:
            return
        try:
            with open(path, "rb") as handle:
                handle.seek(first)
                left = last - first + 1
                while left > 0:
                    chunk = handle.read(min(CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client read what it needed (yt-dlp probes, then closes)


class _FolderServer(ThreadingHTTPServer):
    daemon_threads = True
    folder: Path


def serve_folder(folder: Path) -> tuple[_FolderServer, str]:
    """Start a loopback server for ``folder``; returns (server, base URL). Call ``server.shutdown()``."""
    server = _FolderServer(("127.0.0.1", 0), _RangeHandler)
    server.folder = Path(folder)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def demo_manifest(start: float = 1.0, end: float = 11.0) -> pd.DataFrame:
    rows = []
    for ytid, cls, selected, _ in DEMO_VIDEOS:
        rank = sum(1 for r in rows if r["class"] == cls)
        rows.append({"clip_id": make_clip_id(ytid, start), "ytid": ytid, "start": start, "end": end,
                     "class": cls, "mid": "", "split": "", "source": "demo", "labels": "",
                     "rank": rank, "selected": selected})
    return pd.DataFrame(rows)


def media_demo(out: Path, *, progress: bool = False) -> dict:
    """Run fetch -> trim -> frames into ``out``; returns the final manifest and the stage summaries."""
    out = Path(out)
    mirror = out / "mirror"
    for ytid, _, _, spec in DEMO_VIDEOS:
        if spec is not None and not (mirror / f"{ytid}.mp4").is_file():
            synth_clip(mirror / f"{ytid}.mp4", spec)   # the container follows the name; content decides
    manifest = demo_manifest()
    server, base_url = serve_folder(mirror)
    try:
        options = FetchOptions(root=out / "media", url_template=base_url + "/{ytid}.mp4", workers=1,
                               backoff=0.1, progress=progress)
        fetched, summary = fetch(manifest, options)
    finally:
        server.shutdown()
        server.server_close()
    trimmed, trim_counts = trim(fetched, TrimOptions(root=out / "media", progress=progress))
    framed, frame_counts = frames(trimmed, FrameOptions(root=out / "media", progress=progress))
    write_manifest(framed, out / "media" / "manifest.csv")
    return {"manifest": framed, "fetch": summary, "trim": trim_counts, "frames": frame_counts}
