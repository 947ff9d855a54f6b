"""verify's thresholds and the release/verify/export throughput, measured.

Part 1 -- separation (the evidence behind builder.release.fingerprint.THRESHOLDS):
for N synthetic clips (seeded 0.2 s notes over noise; frames of moving
shapes) it compares each reference window with (a) FFmpeg re-encodes (AAC
48k @44.1 kHz, MP3 32k @22.05 kHz, Opus 24k @48 kHz), (b) the same source
shifted by 0.1/0.25/0.5/1/2 s, (c) another clip; frames with JPEG re-encodes
at 0.5x-3.75x size, frames 0.2/0.5/1 s later and another clip's frame. It
prints the worst case of each group next to the threshold.

Part 2 -- throughput on a synthetic build of --clips clips (3 s, 44.1 kHz
stereo WAV like the authors' files, 360 px frames): release (fingerprints +
hashes), verify on the build itself (hash path) and on a re-encoded copy
(decode path), official-layout export. The baseline in the same run is
reading every WAV and JPEG once (plain I/O + decode), so the ratios say what
fingerprinting costs over just touching the data.

    python bench/release_verify.py [--seeds 12] [--clips 120]
"""
from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.demo.synthetic_release import make_dataset, render_frame, source_audio, write_wav  # noqa: E402
from builder.export.stage import ExportOptions, export  # noqa: E402
from builder.manifest.schema import read_manifest  # noqa: E402
from builder.release.build import ReleaseOptions, build_release  # noqa: E402
from builder.release.fingerprint import (  # noqa: E402
    THRESHOLDS,
    audio_fingerprint,
    audio_similarity,
    frame_fingerprint,
    frame_similarity,
)
from builder.release.verify import VerifyOptions, verify  # noqa: E402

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
CODECS = (("aac", "48k", 44100, "m4a"), ("libmp3lame", "32k", 22050, "mp3"), ("libopus", "24k", 48000, "ogg"))


def separation(seeds: int, work: Path) -> None:
    from PIL import Image
    rate = 16000
    eq: dict[str, list[float]] = {c[0]: [] for c in CODECS}
    shifted: dict[float, list[float]] = {s: [] for s in (0.1, 0.25, 0.5, 1.0, 2.0)}
    other, frame_eq, frame_other = [], [], []
    frame_shift: dict[float, list[tuple[float, float]]] = {s: [] for s in (0.2, 0.5, 1.0)}

    def frame_print(rgb: np.ndarray, quality: int = 95, scale: float = 1.0) -> np.ndarray:
        image = Image.fromarray(rgb)
        if scale != 1.0:
            image = image.resize((int(image.width * scale), int(image.height * scale)), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        (work / "f.jpg").write_bytes(buffer.getvalue())
        return frame_fingerprint(work / "f.jpg")

    for seed in range(seeds):
        source = source_audio(seed, 10.0, rate)
        write_wav(work / "ref.wav", source[:3 * rate], rate)
        ref = audio_fingerprint(work / "ref.wav").logmel
        for codec, bitrate, out_rate, ext in CODECS:
            subprocess.run(FFMPEG + ["-i", str(work / "ref.wav"), "-c:a", codec, "-b:a", bitrate,
                                     str(work / f"t.{ext}")], check=True)
            subprocess.run(FFMPEG + ["-i", str(work / f"t.{ext}"), "-ar", str(out_rate), "-c:a", "pcm_s16le",
                                     str(work / "c.wav")], check=True)
            eq[codec].append(audio_similarity(ref, audio_fingerprint(work / "c.wav").logmel))
        for shift in shifted:
            start = int(shift * rate)
            write_wav(work / "s.wav", source[start:start + 3 * rate], rate)
            shifted[shift].append(audio_similarity(ref, audio_fingerprint(work / "s.wav").logmel))
        write_wav(work / "o.wav", source_audio(seed + 1000, 3.0, rate), rate)
        other.append(audio_similarity(ref, audio_fingerprint(work / "o.wav").logmel))
        frame = render_frame(seed, 1.5, 96, 96)
        fref = frame_print(frame)
        for quality, scale in ((30, 1.0), (60, 2.5), (20, 0.5), (50, 3.75)):
            frame_eq.append(frame_similarity(fref, frame_print(frame, quality, scale)))
        for shift in frame_shift:
            frame_shift[shift].append(frame_similarity(fref, frame_print(render_frame(seed, 1.5 + shift, 96, 96))))
        frame_other.append(frame_similarity(fref, frame_print(render_frame(seed + 1000, 1.5, 96, 96))))
    t = THRESHOLDS
    print(f"separation over {seeds} clips (threshold audio r >= {t['audio_correlation']}, frame r >= "
          f"{t['frame_correlation']} and MAD <= {t['frame_mad']})")
    for codec, values in eq.items():
        print(f"  audio re-encoded {codec:11s} min r = {min(values):.3f}")
    for shift, values in shifted.items():
        print(f"  audio shifted {shift:4.2f} s       max r = {max(values):.3f}")
    print(f"  audio other clip           max r = {max(other):.3f}")
    print(f"  frame re-encoded           min r = {min(r for r, _ in frame_eq):.3f}, max MAD = "
          f"{max(m for _, m in frame_eq):.1f}")
    for shift, values in frame_shift.items():
        print(f"  frame {shift:.1f} s later          max r = {max(r for r, _ in values):.3f}, min MAD = "
              f"{min(m for _, m in values):.1f}")
    print(f"  frame other clip           max r = {max(r for r, _ in frame_other):.3f}, min MAD = "
          f"{min(m for _, m in frame_other):.1f}")


def throughput(clips: int, work: Path) -> None:
    import soundfile
    from PIL import Image
    per_class = max(1, clips // 5)
    built = make_dataset(work / "build", per_class=per_class, rate=44100, frame_height=360, frame_width=640,
                         unavailable=0, curation=False)
    manifest = read_manifest(built.manifest_path)
    n = len(manifest)
    start = time.perf_counter()
    for row in manifest.to_dict("records"):
        soundfile.read(built.root / row["audio_path"])
        with Image.open(built.root / row["frame_path"]) as image:
            image.load()
    baseline = time.perf_counter() - start

    def timed(label: str, fn) -> float:
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        print(f"  {label:38s} {seconds:7.2f} s  {1000 * seconds / n:7.1f} ms/clip  {seconds / baseline:6.1f}x read")
        return seconds

    print(f"throughput on {n} clips (3 s 44.1 kHz stereo WAV, 360x360 + 640x360 JPEG); baseline = read+decode "
          f"every WAV and square JPEG once: {baseline:.2f} s ({1000 * baseline / n:.1f} ms/clip)")
    timed("release (fingerprints, hashes, files)", lambda: build_release(manifest, ReleaseOptions(
        root=built.root, out=work / "rel", version="0.0.1", annotations=built.annotations, date="2026-01-01",
        progress=False)))
    timed("verify, identical copy (hashes)", lambda: verify(VerifyOptions(work / "rel", built.root,
                                                                          progress=False)))
    copy = work / "copy"
    shutil.copytree(built.root, copy)
    for path in (copy / "audio").glob("*.wav"):   # touch one sample: bytes differ, content the same
        data, rate = soundfile.read(path, dtype="int16")
        data[0, 0] ^= 1
        soundfile.write(path, data, rate, subtype="PCM_16")
    timed("verify, changed bytes (decode+compare)", lambda: verify(VerifyOptions(work / "rel", copy,
                                                                                 progress=False)))
    timed("export --layout llinet", lambda: export(manifest, ExportOptions(
        root=built.root, out=work / "official", annotations=built.annotations, progress=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--clips", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        separation(args.seeds, Path(tmp))
        throughput(args.clips, Path(tmp))


if __name__ == "__main__":
    main()
