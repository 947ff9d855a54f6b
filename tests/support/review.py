"""The review tests' media root and server: a small media root the way fetch/trim/frames leave it (the fetched
10 s clip's audio, its 3 s window WAV from 2.0 s, square JPEG frames, a manifest folder with the media contract
columns) and a review server running in a thread on it (``serving``; the ``served`` fixture of conftest.py).
The page in Chromium: :mod:`support.browser`."""
from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
from PIL import Image, ImageDraw

from builder.audioset.classes import load_classes
from builder.commands.common import INSTRUMENT32
from builder.manifest.ids import make_clip_id
from builder.manifest.schema import read_manifest_dir, write_manifest_dir
from builder.review.server import ReviewServer
from builder.review.state import ReviewSession

CLASSES = load_classes(INSTRUMENT32 / "classes.csv")
MID = {c.name: c.mid for c in CLASSES}
FRAME_SIDE = 128
SAMPLE_RATE = 16000
# class -> split; the first three clips of each class are selected, the fourth is the ranked reserve.
CLASS_SPLITS = {"Banjo": "train", "Drum": "train", "Tabla": "test", "Shofar": "val_unseen"}
COLOURS = {"Banjo": (196, 140, 60), "Drum": (200, 60, 60), "Tabla": (70, 120, 200), "Shofar": (90, 170, 110)}
PER_CLASS = 4
CAP = 3


def clip_id(cls: str, index: int) -> str:
    return make_clip_id(f"{cls[:4]}{index:07d}", 30.0 + index)


def draw_frame(path: Path, cls: str, index: int, dark: bool = False) -> None:
    """A square frame: a shaded background and an 'instrument' (ellipse + neck) that moves per clip."""
    rng = np.random.default_rng(index + 17 * len(cls))
    base = np.array(COLOURS[cls], dtype=float)
    ramp = np.linspace(0.55, 1.0, FRAME_SIDE)[:, None, None]
    pixels = (ramp * (base * 0.45 + 90)).repeat(FRAME_SIDE, axis=1) + rng.normal(0, 6, (FRAME_SIDE, FRAME_SIDE, 3))
    image = Image.fromarray(np.clip(pixels * (0.08 if dark else 1.0), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    x, y = 34 + 12 * (index % 3), 40 + 8 * (index % 2)
    fill = tuple(int(c * (0.1 if dark else 1)) for c in (250, 235, 200))
    draw.ellipse((x, y, x + 52, y + 58), fill=fill, outline=(40, 30, 20))
    draw.rectangle((x + 22, y - 30, x + 30, y + 4), fill=(80, 50, 30))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=90)


WINDOW_OFFSET = 2.0
WINDOW_SECONDS = 3.0
SEGMENT_SECONDS = 10.0


def clip_audio(index: int, silent: bool = False) -> np.ndarray:
    """10 s: quiet noise, and a decaying tone from 2.0 s (the window) -- loud only where the window is."""
    rng = np.random.default_rng(index)
    t = np.arange(int(SEGMENT_SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * (220 + 55 * index) * t) * np.exp(-np.clip(t - WINDOW_OFFSET, 0, None))
    audio = np.where(t >= WINDOW_OFFSET, tone, 0.0) + 0.002 * rng.standard_normal(t.size)
    return np.zeros_like(t) if silent else audio


def write_wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")


def build_media(root: Path) -> tuple[pd.DataFrame, Path]:
    """Media under root/{frames,audio}, the manifest folder at root/manifest; returns (manifest, folder)."""
    rows = []
    for cls, split in CLASS_SPLITS.items():
        for index in range(PER_CLASS):
            cid = clip_id(cls, index)
            unavailable = cls == "Banjo" and index == 3        # a reserve clip whose video is gone
            dark = cls == "Drum" and index == 1
            silent = cls == "Banjo" and index == 2
            labels = MID[cls] + (f",{MID['Tabla']}" if cls == "Drum" and index == 2 else "")   # -> ambiguous
            row = {"clip_id": cid, "ytid": cid[:11], "start": 30.0 + index, "end": 40.0 + index, "class": cls,
                   "mid": MID[cls], "split": split, "source": "eval", "labels": labels, "rank": index,
                   "selected": index < CAP, "fetch_status": "unavailable" if unavailable else "ok",
                   "fetch_error": "Video unavailable" if unavailable else "", "media_path": "",
                   "trim_status": "", "trim_flags": "", "audio_path": "", "window_offset": "",
                   "window_seconds": "", "frames_status": "", "frame_flags": "", "frame_path": "",
                   "frame_full_path": "", "frame_time": "", "frame_width": "", "frame_height": "",
                   "frame_size": ""}
            if not unavailable:
                draw_frame(root / "frames" / f"{cid}.jpg", cls, index, dark=dark)
                audio = clip_audio(index, silent=silent)
                first = int(WINDOW_OFFSET * SAMPLE_RATE)
                write_wav(root / "clips" / f"{cid}.wav", audio)
                write_wav(root / "audio" / f"{cid}.wav", audio[first:first + int(WINDOW_SECONDS * SAMPLE_RATE)])
                row.update({"media_path": f"clips/{cid}.wav", "trim_status": "ok",
                            "trim_flags": "silent" if silent else "", "audio_path": f"audio/{cid}.wav",
                            "window_offset": WINDOW_OFFSET, "window_seconds": WINDOW_SECONDS, "frames_status": "ok",
                            "frame_flags": "dark" if dark else "", "frame_path": f"frames/{cid}.jpg",
                            "frame_full_path": f"frames_full/{cid}.jpg", "frame_time": 3.5,
                            "frame_width": FRAME_SIDE, "frame_height": FRAME_SIDE, "frame_size": FRAME_SIDE})
            rows.append(row)
    manifest = pd.DataFrame(rows)
    folder = root / "manifest"
    write_manifest_dir(manifest, folder)
    return manifest, folder


def make_session(root: Path, **kwargs) -> ReviewSession:
    manifest = read_manifest_dir(root / "manifest")
    return ReviewSession(manifest, root, decisions_path=kwargs.pop("decisions", root / "decisions.csv"),
                         annotations_path=kwargs.pop("annotations", root / "annotations.json"), classes=CLASSES,
                         manifest_source=str(root / "manifest"), **kwargs)


@contextlib.contextmanager
def running_server(session: ReviewSession) -> Iterator[ReviewServer]:
    server = ReviewServer(session, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def serving(root: Path, **session_options: object) -> Iterator[tuple[ReviewServer, Path]]:
    """A fresh media root under ``root`` (``build_media``) and a server on it: yields (server, root).
    ``session_options`` go to ``ReviewSession`` (``reviewer="ana"``: the server's --reviewer)."""
    build_media(root)
    with running_server(make_session(root, **session_options)) as server:
        yield server, root


def request(url: str, method: str = "GET", body: object = None, headers: dict | None = None,
            raw: bytes | None = None) -> tuple[int, dict, bytes]:
    """(status, headers, body bytes) without raising on 4xx/5xx."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
