"""trim + frames throughput (clips/s/core) on generated 10 s clips, 1 vs 2 workers.

Clips look like `fetch` output: H.264 + AAC stereo 44.1 kHz in MP4, one
keyframe per second (what fetch's re-encode writes), default 640x360 at
25 fps (YouTube's 360p; use --height 720 for the largest frames of the
authors' release). The stage worker functions (the same code `llinet-build
trim/frames` runs) process all clips in a pool of N pre-started worker
processes; start-up (imports) is excluded from the steady-state figure and
reported separately as end-to-end time.

Target: >= 25 clips/s/core for trim + frames together.

    python bench/media_throughput.py [--clips 48] [--height 360] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.demo.videos import SynthSpec, synth_clip  # noqa: E402
from builder.media.frames import FrameOptions, frames_shard  # noqa: E402
from builder.media.trim import TrimOptions, trim_shard  # noqa: E402


def make_clips(folder: Path, count: int, height: int) -> list[dict]:
    width = height * 16 // 9 // 2 * 2
    spec = SynthSpec(duration=10.0, width=width, height=height, fps=25, loud=(4.0, 7.0), gop_seconds=1.0)
    template = synth_clip(folder / "template.mp4", spec)
    tasks = []
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        clip_id = f"bench{i:06d}_0"
        shutil.copyfile(template, folder / "clips" / f"{clip_id}.mp4")
        tasks.append({"clip_id": clip_id, "media_path": f"clips/{clip_id}.mp4", "input_key": "bench",
                      "window_offset": 0.0, "window_seconds": 3.0})
    return tasks


def both_stages(tasks: list[dict], root: str, policy: str) -> tuple[int, float]:
    """trim then frames for a shard; returns (clips ok in both, seconds spent)."""
    start = time.perf_counter()
    trimmed = trim_shard(tasks, TrimOptions(root=Path(root), policy=policy, progress=False))
    offsets = {r["clip_id"]: r.get("window_offset", 0.0) for r in trimmed}
    frame_tasks = [{**t, "window_offset": float(offsets.get(t["clip_id"], 0.0) or 0.0)} for t in tasks]
    grabbed = frames_shard(frame_tasks, FrameOptions(root=Path(root), progress=False))
    ok = sum(1 for a, b in zip(trimmed, grabbed, strict=True) if a["status"] == "ok" and b["status"] == "ok")
    return ok, time.perf_counter() - start


def run(tasks: list[dict], root: Path, workers: int, policy: str, shard: int) -> dict:
    shards = [tasks[i:i + shard] for i in range(0, len(tasks), shard)]
    t0 = time.perf_counter()
    with futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        # Warm-up: one clip per worker, so imports (torch, torchcodec, cv2) and codec set-up are paid
        # before timing, as they are once per worker in a real run.
        list(pool.map(both_stages, [tasks[:1]] * workers, [str(root)] * workers, [policy] * workers))
        t1 = time.perf_counter()
        done = list(pool.map(both_stages, shards, [str(root)] * len(shards), [policy] * len(shards)))
        t2 = time.perf_counter()
    ok = sum(d[0] for d in done)
    steady = t2 - t1
    return {"workers": workers, "ok": ok, "steady_s": steady, "end_to_end_s": t2 - t0,
            "clips_per_s": ok / steady, "clips_per_s_per_core": ok / steady / workers,
            "ms_per_clip_in_worker": 1000 * sum(d[1] for d in done) / max(1, ok)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policy", default="loudest", choices=("first", "center", "loudest"))
    parser.add_argument("--shard", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llinet-bench-") as tmp:
        root = Path(tmp)
        tasks = make_clips(root, args.clips, args.height)
        print(f"{args.clips} clips, 10 s H.264/AAC {args.height}p 25 fps, policy={args.policy}; "
              f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
        results = [run(tasks, root, w, args.policy, args.shard) for w in args.workers]
    base = results[0]["clips_per_s"]
    print(f"{'workers':>7} {'clips/s':>8} {'clips/s/core':>12} {'ms/clip':>8} {'scaling':>8} {'end-to-end s':>12}")
    for r in results:
        print(f"{r['workers']:>7} {r['clips_per_s']:>8.1f} {r['clips_per_s_per_core']:>12.1f} "
              f"{r['ms_per_clip_in_worker']:>8.1f} {r['clips_per_s'] / base:>7.2f}x {r['end_to_end_s']:>12.1f}")
    best = max(r["clips_per_s_per_core"] for r in results)
    print(f"target >= 25 clips/s/core: {'met' if best >= 25 else 'NOT met'} (best {best:.1f})")


if __name__ == "__main__":
    main()
