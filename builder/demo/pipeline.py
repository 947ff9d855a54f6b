"""The offline end-to-end demo on the learnable synthetic zero-shot set.

Every step is the real command a user runs, on media the demo renders itself
(no network): synthetic "YouTube videos" (builder.demo.zeroshot_set: class k = a tone
whose pitch and a moving disk whose hue and size follow one rule; unseen
classes lie between seen ones) are served by a loopback mirror that honours
HTTP Range, then

    fetch -> trim -> frames -> annotate (exact disk masks) -> curate -> release -> verify
    -> llinet-train -> llinet-eval

One video per class is missing from the mirror, as if removed from YouTube, so
fetch visibly replaces it from the ranked reserve.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from builder.audioset.classes import TargetClass, write_classes
from builder.demo.mirror import MirrorServer
from builder.errors import LlinetError
from builder.manifest.ids import make_clip_id
from builder.manifest.media_root import MediaRoot
from builder.manifest.schema import read_manifest, write_manifest_dir

DEMO_VERSION = "0.1.0"


@dataclass
class DemoOptions:
    n_train_classes: int = 6     # + 5 interpolated unseen classes (3 test, 2 validation)
    per_class: int = 10          # videos rendered per class (selection + reserve)
    cap: int = 8                 # clips selected per class
    missing_rank: int = 1        # this rank's video is "removed from YouTube" in every class
    epochs: int = 15
    progress: bool = True
    verbosity: int = 0           # -v count minus -q count, passed on to every command the demo runs
    # The synthetic videos: 10 s like AudioSet's clips; trim keeps a 3 s window of each, so the
    # tests render shorter, smaller ones (rendering is most of the demo's media time).
    video_seconds: float = 10.0
    video_size: int = 160        # square frames, pixels

    def __post_init__(self) -> None:
        if self.video_seconds < 3.0:
            raise LlinetError(f"video_seconds must be at least the 3 s trim window, got {self.video_seconds}")


def _step(log: Callable[[str], None], title: str) -> float:
    log(f"\n== {title}")
    return time.perf_counter()


def _run(command: Callable[[list[str]], int], argv: list[str], what: str) -> None:
    code = command(argv)
    if code != 0:
        raise LlinetError(f"demo step {what!r} failed with exit code {code}: {' '.join(argv)}")


def demo_manifest(videos: pd.DataFrame, options: DemoOptions) -> tuple[pd.DataFrame, list[TargetClass]]:
    """Builder-schema manifest of the rendered videos: ranked per class, first ``cap`` selected."""
    rows, classes = [], []
    for k, (key, group) in enumerate(videos.groupby("class", sort=True)):
        name = str(key)
        split = group["split"].iloc[0]
        mid = f"/synthetic/{k:02d}"
        classes.append(TargetClass(name, mid, name, "test" if split == "test" else "train"))
        for rank, ytid in enumerate(group["ytid"]):
            rows.append({"clip_id": make_clip_id(ytid, 0.0), "ytid": ytid, "start": 0.0,
                         "end": float(options.video_seconds),
                         "class": name, "mid": mid, "split": split, "source": "synthetic", "labels": mid,
                         "rank": rank, "selected": rank < options.cap})
    return pd.DataFrame(rows), classes


def write_masks(manifest: pd.DataFrame, videos: pd.DataFrame, root: Path, out: Path,
                options: DemoOptions | None = None) -> int:
    """Exact ground-truth masks (the disk) for masked-split frames, as PNGs named by clip id."""
    from builder.demo.zeroshot_set import class_video_mask

    options = options or DemoOptions()
    info = videos.set_index("ytid")
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for row in manifest.to_dict("records"):
        if row["split"] not in ("test", "val_unseen") or not row["selected"] or row.get("frames_status", "") != "ok":
            continue
        video = info.loc[row["ytid"]]
        mask = class_video_mask(float(video["position"]), int(video["seed"]), float(row["frame_time"]),
                                seconds=options.video_seconds, size=options.video_size)
        frame = Image.open(root / row["frame_path"])
        if frame.size != mask.shape[::-1]:
            raise LlinetError(f"frame {row['frame_path']} is {frame.size}, mask {mask.shape[::-1]}")
        Image.fromarray(mask.astype(np.uint8) * 255).save(out / f"{row['clip_id']}.png")
        count += 1
    return count


def synthetic_demo(out: Path, options: DemoOptions | None = None, log: Callable[[str], None] = print) -> dict:
    from builder.commands.main import main as build
    from builder.demo.zeroshot_set import render_synthetic_videos
    from model.evaluation.cli import main as evaluate
    from model.training.cli import main as train

    options = options or DemoOptions()  # a fresh one per call: DemoOptions is mutable
    out = Path(out)
    marker = out / ".llinet-demo"
    if out.exists():  # every demo run starts from scratch, so its outputs are reproducible
        if any(out.iterdir()) and not marker.exists():
            raise LlinetError(f"{out} exists and was not made by the demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    marker.touch()
    mirror, media, manifests = out / "mirror", out / "media", out / "synthetic_manifests"
    layout = MediaRoot(media)
    loudness = ["-q"] if options.verbosity < 0 else ["-v"] * options.verbosity
    quiet = ([] if options.progress else ["--no-progress"]) + loudness
    t = _step(log, f"render synthetic videos ({options.per_class} per class) into {mirror}")
    videos = render_synthetic_videos(mirror, n_train_classes=options.n_train_classes, per_class=options.per_class,
                                     seconds=options.video_seconds, size=options.video_size,
                                     skip_rank=options.missing_rank)   # no need to render what is "gone"
    manifest, classes = demo_manifest(videos, options)
    gone = manifest.loc[manifest["rank"] == options.missing_rank, "ytid"]
    for ytid in gone:
        (mirror / f"{ytid}.mp4").unlink(missing_ok=True)   # "video unavailable"
    write_manifest_dir(manifest, manifests)
    write_classes(classes, manifests / "classes.csv")
    log(f"{len(videos)} videos, {manifest['class'].nunique()} classes "
        f"({', '.join(f'{s}: {n}' for s, n in manifest.groupby('split')['class'].nunique().items())}); "
        f"{len(gone)} removed from the mirror ({time.perf_counter() - t:.1f} s)")

    t = _step(log, "fetch -> trim -> frames from the local mirror")
    with MirrorServer(mirror) as server:
        _run(build, ["fetch", "--manifest-dir", str(manifests), "--root", str(media), "--url-template",
                     server.url_template, "--workers", "2", "--backoff", "0.1"] + quiet, "fetch")
    _run(build, ["trim", "--root", str(media)] + quiet, "trim")
    _run(build, ["frames", "--root", str(media)] + quiet, "frames")
    log(f"({time.perf_counter() - t:.1f} s)")

    t = _step(log, "annotate: exact disk masks of the unseen-class frames -> COCO")
    fetched = read_manifest(layout.manifest)
    masks = write_masks(fetched, videos, media, out / "masks", options)
    _run(build, ["annotate", "import", "--root", str(media), "--classes", str(manifests / "classes.csv"),
                 "--from-masks", str(out / "masks")] + loudness, "annotate")
    log(f"{masks} masks ({time.perf_counter() - t:.1f} s)")

    t = _step(log, "curate (automatic filters) -> release -> verify")
    _run(build, ["curate", "--root", str(media), "--classes", str(manifests / "classes.csv")] + loudness,
         "curate")
    release = out / "release"
    # No --date: the release is dated the day it is made (the fetch records are today's too).
    _run(build, ["release", "--version", DEMO_VERSION, "--root", str(media),
                 "--name", "llinet-synthetic-demo", "--creator", "llinet demo (synthetic data)",
                 "--publisher", "llinet demo (synthetic data)", "--out", str(release)] + quiet, "release")
    _run(build, ["verify", "--release", str(release), "--root", str(media),
                 "--report", str(out / "verify_report.json")] + quiet, "verify")
    log(f"({time.perf_counter() - t:.1f} s)")

    t = _step(log, f"llinet-train ({options.epochs} epochs, small CPU config)")
    run_dir = out / "run"
    _run(train, ["--root", str(media), "--out", str(run_dir), "--backbone", "resnet18",
                 "--image-size", "64", "--image-weights", "none", "--batch-size", "16", "--lr", "0.005",
                 "--epochs", str(options.epochs), "--workers", "0", "--val-split", "val_unseen",
                 "--seed", "200"] + quiet, "llinet-train")
    log(f"({time.perf_counter() - t:.1f} s)")

    t = _step(log, "llinet-eval on the unseen test classes")
    report = out / "report"
    _run(evaluate, ["--checkpoint", str(run_dir / "best.pt"), "--root", str(media),
                    "--split", "test", "--masks", str(layout.annotations), "--out", str(report),
                    "--workers", "0", "--draws", "200"] + quiet, "llinet-eval")
    log(f"({time.perf_counter() - t:.1f} s)")
    return {"release": release, "report": report / "report.md", "media": media, "run": run_dir,
            "classes": manifests / "classes.csv"}
