"""fetch cost per clip: in-process yt-dlp API (`builder.fetch.stage`) vs one yt-dlp CLI process per clip.

Both download the same [0, 10] s sections from the same local Range-capable
HTTP server (tests/support/http_server.py), with the same format selection,
exact cuts (force_keyframes_at_cuts), FFmpeg arguments and an ffprobe check
of every output, measured in the same run, alternating order. The clips are
small (default 320x180) so that the figure is dominated by per-clip
overhead rather than by FFmpeg's re-encode, which both paths pay equally.

Target: in-process <= 0.3 x the CLI's time per clip.

    python bench/fetch_overhead.py [--clips 12] [--height 180]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the test suite's local HTTP server

from builder.demo.videos import SynthSpec, synth_clip  # noqa: E402
from builder.fetch.options import DEFAULT_OUTPUT_ARGS, FetchOptions  # noqa: E402
from builder.fetch.stage import fetch  # noqa: E402
from builder.media.ffmpeg import check_clip, ffmpeg_argv, probe  # noqa: E402
from support.http_server import LocalHTTPServer  # noqa: E402
from support.media import manifest_rows, ytid_for  # noqa: E402


def in_process(manifest, root: Path, server) -> float:
    options = FetchOptions(root=root, url_template=server.base_url + "/v/{ytid}.mp4", progress=False,
                           workers=1, rate_state_dir=root / ".rate")
    start = time.perf_counter()
    out, _ = fetch(manifest, options)
    elapsed = time.perf_counter() - start
    assert (out["fetch_status"] == "ok").all(), out["fetch_status"].tolist()
    return elapsed


def cli(manifest, root: Path, server) -> float:
    exe = shutil.which("yt-dlp", path=str(Path(sys.executable).parent)) or "yt-dlp"
    start = time.perf_counter()
    for row in manifest.itertuples():
        out = root / f"{row.clip_id}.%(ext)s"
        args = [exe, "--quiet", "--no-warnings", "--no-progress", "--no-cache-dir",
                "-f", "bv*[height<=?720]+ba/b[height<=?720]/wv*+ba/w", "--merge-output-format", "mp4",
                "--download-sections", f"*{row.start}-{row.end}", "--force-keyframes-at-cuts",
                "--downloader-args", "ffmpeg_o:" + " ".join(DEFAULT_OUTPUT_ARGS),
                "-o", str(out), server.url(f"/v/{row.ytid}.mp4")]
        subprocess.run(args, check=True)
        produced = next(root.glob(f"{row.clip_id}.*"))
        assert check_clip(probe(produced), row.end - row.start, 0.5) is None
    return time.perf_counter() - start


def floor(manifest, root: Path, server) -> float:
    """The work both paths share, without yt-dlp: FFmpeg's exact section cut over HTTP + the ffprobe check."""
    # DEFAULT_OUTPUT_ARGS is the "-name value" fragment yt-dlp splices in; as output options here.
    output_options = dict(zip((name.lstrip("-") for name in DEFAULT_OUTPUT_ARGS[::2]), DEFAULT_OUTPUT_ARGS[1::2],
                              strict=True))
    start = time.perf_counter()
    for row in manifest.itertuples():
        out = root / f"{row.clip_id}.mp4"
        # -ss/-t as input options: FFmpeg seeks in the input instead of decoding up to the cut.
        source = ffmpeg.input(server.url(f"/v/{row.ytid}.mp4"), ss=str(row.start), t=str(row.end - row.start))
        subprocess.run(ffmpeg_argv(source.output(str(out), f="mp4", **output_options), "-v", "error", "-y"),
                       check=True)
        assert check_clip(probe(out), row.end - row.start, 0.5) is None
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llinet-fetch-bench-") as tmp:
        tmp = Path(tmp)
        width = args.height * 16 // 9 // 2 * 2
        source = synth_clip(tmp / "source.mp4", SynthSpec(width=width, height=args.height, fps=25))
        ids = [ytid_for(i, "bench") for i in range(args.clips)]
        manifest = manifest_rows([(y, "A", True, i) for i, y in enumerate(ids)])
        with LocalHTTPServer({f"/v/{y}.mp4": source for y in ids}) as server:
            per_clip: dict[str, list[float]] = {"in-process": [], "cli": [], "floor": []}
            runners = {"in-process": in_process, "cli": cli, "floor": floor}
            for r in range(args.rounds):
                order = ("in-process", "cli", "floor") if r % 2 == 0 else ("floor", "cli", "in-process")
                for kind in order:
                    root = tmp / f"{kind}-{r}"
                    root.mkdir()
                    per_clip[kind].append(runners[kind](manifest, root, server) / args.clips)
    print(f"{args.clips} clips x {args.rounds} rounds, 10 s sections of a {width}x{args.height} H.264/AAC source; "
          f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}")
    inproc, cli_s = statistics.median(per_clip["in-process"]), statistics.median(per_clip["cli"])
    print(f"in-process yt-dlp API : {1000 * inproc:7.1f} ms/clip  (rounds: "
          + ", ".join(f"{1000 * x:.0f}" for x in per_clip["in-process"]) + ")")
    print(f"yt-dlp CLI per clip   : {1000 * cli_s:7.1f} ms/clip  (rounds: "
          + ", ".join(f"{1000 * x:.0f}" for x in per_clip["cli"]) + ")")
    base = statistics.median(per_clip["floor"])
    print(f"FFmpeg cut + ffprobe  : {1000 * base:7.1f} ms/clip  (the shared work, no yt-dlp)")
    ratio = inproc / cli_s
    print(f"ratio in-process / CLI: {ratio:.2f}  (target <= 0.30: {'met' if ratio <= 0.30 else 'NOT met'})")
    print(f"overhead above the shared work: in-process {1000 * (inproc - base):.0f} ms, CLI "
          f"{1000 * (cli_s - base):.0f} ms per clip (ratio {(inproc - base) / (cli_s - base):.2f})")


if __name__ == "__main__":
    main()
