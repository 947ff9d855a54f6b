"""The review server at full dataset scale: is every click still instant?

Builds a synthetic media root the size of INSTRUMENT-32CLASS with a margin
(32 classes x --per-class clips, 150 selected + reserve; square frames of
--frame px for the masked splits), a decision list with --decisions rows and
--masks COCO masks already drawn, then times over real HTTP on loopback:

* start-up (manifest -> ReviewSession, including a full curate projection),
* GET /api/state (every clip; the page load) and its size,
* POST /api/decision (record_decision + the class's curate projection),
* PUT /api/mask (runs -> validation -> COCO RLE rewrite of annotations.json),
* GET /media/strip (the waveform strip: drawn on the first request, then from the cache),
* GET /api/changes (what an open page asks every 2 s) when nothing changed,
* with --browser: page load to ready and one keyboard accept in Chromium.

The first --audio undecided clips (the browser's first page) get real audio:
the 10 s clip and its 3 s window, 16 kHz mono WAV.

The baseline in the same run is the library call alone -- record_decision and
save_clip_mask on a copy of the same files -- so the ratios say what the
server, the JSON and the projection add on top of the unavoidable write.

    python bench/review_scale.py [--per-class 180] [--decisions 3000] [--masks 750] [--frame 720] [--browser]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.annotate.coco import AnnotationContext, add_mask, new_annotations, save_annotations, save_clip_mask  # noqa: E402
from builder.audioset.classes import load_classes  # noqa: E402
from builder.commands.common import INSTRUMENT32  # noqa: E402
from builder.curate.decisions import Decision, record_decision, write_decisions  # noqa: E402
from builder.review.server import ReviewServer  # noqa: E402
from builder.review.state import ReviewSession, mask_to_runs  # noqa: E402

CLASSES = load_classes(INSTRUMENT32 / "classes.csv")
CAP = 150


def build(root: Path, per_class: int, frame: int) -> pd.DataFrame:
    rows = []
    (root / "frames").mkdir(parents=True)
    grey = Image.fromarray(np.full((frame, frame, 3), 110, dtype=np.uint8))
    for ci, cls in enumerate(CLASSES):
        split = "train" if cls.split == "train" else ("val_unseen" if ci % 4 == 0 else "test")
        for rank in range(per_class):
            cid = f"c{ci:02d}r{rank:07d}"[:11] + f"_{1000 * rank}"
            frame_path = f"frames/{cid}.jpg"
            if split != "train":          # only masked clips need a real frame (its size is read)
                grey.save(root / frame_path, quality=70)
            rows.append({"clip_id": cid, "ytid": cid[:11], "start": float(rank), "end": rank + 10.0,
                         "class": cls.name, "mid": cls.mid, "split": split, "source": "eval", "labels": cls.mid,
                         "rank": rank, "selected": rank < CAP, "fetch_status": "ok", "trim_status": "ok",
                         "frames_status": "ok", "trim_flags": "silent" if rank % 37 == 5 else "",
                         "frame_flags": "dark" if rank % 41 == 7 else "", "audio_path": f"audio/{cid}.wav",
                         "media_path": f"clips/{cid}.wav", "window_offset": float(rank % 7),
                         "window_seconds": 3.0, "frame_path": frame_path, "frame_size": frame})
    return pd.DataFrame(rows)


def write_audio(root: Path, manifest: pd.DataFrame, ids: list[str], rate: int = 16000) -> None:
    rows = manifest.set_index("clip_id")
    rng = np.random.default_rng(0)
    for cid in ids:
        t = np.arange(10 * rate) / rate
        clip = 0.2 * np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.sin(t)) + 0.01 * rng.standard_normal(t.size)
        first = int(rows.loc[cid, "window_offset"] * rate)
        for path, samples in ((root / rows.loc[cid, "media_path"], clip),
                              (root / rows.loc[cid, "audio_path"], clip[first:first + 3 * rate])):
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, samples, rate, subtype="PCM_16")


def prefill(root: Path, manifest: pd.DataFrame, n_decisions: int, n_masks: int, frame: int) -> list[str]:
    ids = manifest["clip_id"].tolist()
    write_decisions(root / "decisions.csv", [Decision(c, "accept" if i % 5 else "reject", "" if i % 5 else "no",
                                                      "bench", "") for i, c in enumerate(ids[:n_decisions])])
    context = AnnotationContext(manifest, root, CLASSES)
    masked = context.masked_clips(selected_only=False)
    coco = new_annotations(context.categories)
    yy, xx = np.mgrid[:frame, :frame]
    for i, cid in enumerate(masked[:n_masks]):
        mask = (xx - frame / 2) ** 2 / (0.3 + (i % 5) / 20) + (yy - frame / 2) ** 2 < (frame / 3) ** 2
        add_mask(coco, context.target(cid), mask)
    save_annotations(coco, root / "annotations.json")
    return masked


def request(url: str, method: str = "GET", body: object = None) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=60) as response:
        return response.status, dict(response.headers), response.read()


def status_of(url: str) -> int:
    """The HTTP status of a GET (a server without the endpoint answers 404: that line is left out)."""
    try:
        return request(url)[0]
    except urllib.error.HTTPError as exc:
        return exc.code


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=180)
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--masks", type=int, default=750)
    parser.add_argument("--frame", type=int, default=720)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--audio", type=int, default=240, help="clips given real audio (the first page)")
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review_bench_") as tmp:
        root = Path(tmp) / "media"
        t0 = time.perf_counter()
        manifest = build(root, args.per_class, args.frame)
        masked = prefill(root, manifest, args.decisions, args.masks, args.frame)
        with_audio = manifest["clip_id"].tolist()[args.decisions:args.decisions + args.audio]
        write_audio(root, manifest, with_audio)
        print(f"setup: {len(manifest)} clips, {args.decisions} decisions, {min(args.masks, len(masked))} masks of "
              f"{args.frame}x{args.frame} ({(root / 'annotations.json').stat().st_size / 1e6:.1f} MB) in "
              f"{time.perf_counter() - t0:.1f} s")
        baseline_root = Path(tmp) / "baseline"
        shutil.copytree(root, baseline_root)

        start, session = timed(lambda: ReviewSession(manifest, root, decisions_path=root / "decisions.csv",
                                                     annotations_path=root / "annotations.json", classes=CLASSES,
                                                     reviewer="bench"), 3)
        server = ReviewServer(session, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        state_s, (_, _, body) = timed(lambda: request(server.url + "api/state"), args.repeat)
        target = masked[-1]                             # a clip without a mask yet
        ids = iter(manifest["clip_id"].tolist()[args.decisions:])
        decide_s, _ = timed(lambda: request(server.url + "api/decision", "POST",
                                            {"clip_id": next(ids), "decision": "accept"}), args.repeat)
        yy, xx = np.mgrid[:args.frame, :args.frame]
        runs = mask_to_runs((xx - 300) ** 2 + (yy - 360) ** 2 < 200 ** 2)
        mask_s, (status, _, _) = timed(lambda: request(server.url + f"api/mask/{target}", "PUT",
                                                       {"width": args.frame, "height": args.frame, "runs": runs}),
                                       args.repeat)
        assert status == 200, status
        strips = iter(with_audio[::-1])                 # from the end: clips the page below never asks for
        strip_cold, strip_status = timed(lambda: status_of(server.url + f"media/strip/{next(strips)}"), args.repeat)
        strip_warm, _ = timed(lambda: status_of(server.url + f"media/strip/{with_audio[-1]}"), args.repeat)
        state = json.loads(body)
        feed = f"api/changes?since={{}}&instance={state.get('instance', '')}"
        try:                  # where the feed is now, after the writes above
            seq = json.loads(request(server.url + feed.format(state.get("seq", 0)))[2]).get("seq", 0)
        except urllib.error.HTTPError:
            seq = 0
        changes_s, changes_status = timed(lambda: status_of(server.url + feed.format(seq)), args.repeat)

        base_ids = iter(manifest["clip_id"].tolist()[args.decisions:])
        base_decide, _ = timed(lambda: record_decision(baseline_root / "decisions.csv",
                                                       Decision(next(base_ids), "accept", "", "bench", "")),
                               args.repeat)
        context = AnnotationContext(manifest, baseline_root, CLASSES)
        mask = (xx - 300) ** 2 + (yy - 360) ** 2 < 200 ** 2
        base_mask, _ = timed(lambda: save_clip_mask(baseline_root / "annotations.json", context, target, mask),
                             args.repeat)
        print(f"start-up (load + full curate projection): {start * 1e3:8.1f} ms")
        print(f"GET  /api/state ({len(body) / 1e6:.2f} MB JSON):   {state_s * 1e3:8.1f} ms")
        print(f"POST /api/decision:                     {decide_s * 1e3:8.1f} ms   baseline record_decision "
              f"{base_decide * 1e3:6.1f} ms   ratio {decide_s / base_decide:5.1f}x")
        print(f"PUT  /api/mask ({len(runs)} runs):           {mask_s * 1e3:8.1f} ms   baseline save_clip_mask "
              f"{base_mask * 1e3:6.1f} ms   ratio {mask_s / base_mask:5.1f}x")
        if strip_status == 200:
            print(f"GET  /media/strip: first request (drawn) {strip_cold * 1e3:6.1f} ms, "
                  f"cached {strip_warm * 1e3:6.1f} ms")
        if changes_status == 200:
            print(f"GET  /api/changes (nothing new):        {changes_s * 1e3:8.1f} ms")
        if args.browser:
            browser_times(server.url, manifest["clip_id"].iloc[-1])
        server.shutdown()
        server.server_close()
    return 0


def browser_times(url: str, last_clip: str) -> None:
    from playwright.sync_api import sync_playwright
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        t0 = time.perf_counter()
        page.goto(url + "#curate?decision=undecided")
        page.wait_for_selector("body[data-ready=true]")
        load = time.perf_counter() - t0
        page.fill("#reviewer", "bench")
        page.keyboard.press("Enter")
        accepts = []
        for _ in range(6):          # the first waits behind the page's 240 frame downloads
            focused = page.locator(".card.focused").get_attribute("data-id")
            t0 = time.perf_counter()
            page.keyboard.press("a")
            page.wait_for_selector(f'.card.accepted[data-id="{focused}"]')
            accepts.append(time.perf_counter() - t0)
        print(f"browser: page load to ready {load * 1e3:8.1f} ms ({page.locator('.card').count()} cards rendered); "
              f"key 'a' to card accepted: first {accepts[0] * 1e3:.0f} ms, median of the next "
              f"{len(accepts) - 1} {statistics.median(accepts[1:]) * 1e3:.0f} ms")
        browser.close()


if __name__ == "__main__":
    sys.exit(main())
