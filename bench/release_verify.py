"""verify's thresholds and the release/verify/export throughput, measured.

Part 1 -- separation (the evidence behind builder.release.fingerprint.THRESHOLDS):
for N synthetic clips (seeded 0.2 s notes over noise; frames of moving
shapes) it compares each reference window with (a) FFmpeg re-encodes (AAC
48k @44.1 kHz, MP3 32k @22.05 kHz, Opus 24k @48 kHz), (b) the same source
shifted by 0.1/0.25/0.5/1/2 s, (c) another clip; frames with JPEG re-encodes
at 0.5x-3.75x size, frames 0.2/0.5/1 s later and another clip's frame. It
prints the worst case of each group next to the threshold.

Part 2 -- JPEG corruption (the evidence behind builder.release.media_format):
16 bytes XORed (0x5A and 0x01) at 13 places in each of 12 built frames; how
often FFmpeg's strict decode, the entropy walk of builder.release.jpeg_scan,
either of them, and the content comparison flag the damage.

Part 3 -- throughput on a synthetic build of --clips clips (3 s, 44.1 kHz
stereo WAV like the authors' files, 360 px frames): release (fingerprints,
hashes, formats), verify on the build itself (hash path), on a copy whose
bytes differ in the same formats (format + strict decode + fingerprint path)
and on the WebDataset and Hugging Face exports, official-layout export. The
baseline in the same run is reading every WAV and JPEG once (plain I/O +
decode), so the ratios say what checking costs over just touching the data.

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

import ffmpeg
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from builder.demo.synthetic_release import make_dataset, render_frame, source_audio, write_wav  # noqa: E402
from builder.export.stage import ExportOptions, export  # noqa: E402
from builder.manifest.schema import read_manifest  # noqa: E402
from builder.media.ffmpeg import ffmpeg_argv  # noqa: E402
from builder.release.build import ReleaseOptions, build_release  # noqa: E402
from builder.release.fingerprint import (  # noqa: E402
    THRESHOLDS,
    audio_fingerprint,
    audio_similarity,
    frame_fingerprint,
    frame_similarity,
)
from builder.release.verify import VerifyOptions, VerifyReport, verify  # noqa: E402

GLOBAL_OPTIONS = ("-nostdin", "-v", "error", "-y")
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
            encode = ffmpeg.input(str(work / "ref.wav")).output(str(work / f"t.{ext}"),
                                                               **{"c:a": codec, "b:a": bitrate})
            subprocess.run(ffmpeg_argv(encode, *GLOBAL_OPTIONS), check=True)
            decode = ffmpeg.input(str(work / f"t.{ext}")).output(str(work / "c.wav"),
                                                                 **{"ar": str(out_rate), "c:a": "pcm_s16le"})
            subprocess.run(ffmpeg_argv(decode, *GLOBAL_OPTIONS), check=True)
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


def corruption(work: Path) -> None:
    from builder.release.jpeg_scan import scan_errors
    from builder.release.media_format import ffmpeg_decode_errors

    built = make_dataset(work / "corrupt", per_class=3, unavailable=0, curation=False)
    frames = sorted((built.root / "frames").glob("*.jpg"))[:8] + sorted((built.root / "frames_full").glob("*.jpg"))[:4]
    counts = {"ffmpeg": 0, "walk": 0, "either": 0, "content": 0, "any": 0}
    cases = 0
    for path in frames:
        data, crop = path.read_bytes(), path.parent.name == "frames_full"
        reference = frame_fingerprint(path, crop_square=crop)
        for percent in range(30, 95, 5):
            for value in (0x5A, 0x01):
                damaged = bytearray(data)
                start = len(damaged) * percent // 100
                for i in range(16):
                    damaged[start + i] ^= value
                damaged = bytes(damaged)
                ffmpeg_says, walk_says = bool(ffmpeg_decode_errors([damaged])[0]), bool(scan_errors(damaged))
                try:
                    corr, mad = frame_similarity(reference, frame_fingerprint(damaged, crop_square=crop))
                    content = corr < THRESHOLDS["frame_correlation"] or mad > THRESHOLDS["frame_mad"]
                except Exception:  # noqa: BLE001 - an undecodable frame is caught by content too
                    content = True
                cases += 1
                for name, hit in (("ffmpeg", ffmpeg_says), ("walk", walk_says), ("either", ffmpeg_says or walk_says),
                                  ("content", content), ("any", ffmpeg_says or walk_says or content)):
                    counts[name] += hit
    print(f"JPEG corruption: {cases} damaged frames (16 bytes XORed), flagged by")
    for name, label in (("ffmpeg", "FFmpeg -err_detect explode"), ("walk", "entropy walk (jpeg_scan)"),
                        ("either", "either decoder check"), ("content", "content (32x32 fingerprint)"),
                        ("any", "verify (any of them)")):
        print(f"  {label:30s} {counts[name]:4d} ({100 * counts[name] / cases:.0f} %)")


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
        result = fn()
        seconds = time.perf_counter() - start
        counts = result.counts() if isinstance(result, VerifyReport) else ""   # what verify concluded
        print(f"  {label:46s} {seconds:7.2f} s  {1000 * seconds / n:7.1f} ms/clip  {seconds / baseline:6.1f}x read"
              f"  {counts}")
        return seconds

    print(f"throughput on {n} clips (3 s 44.1 kHz stereo WAV, 360x360 + 640x360 JPEG); baseline = read+decode "
          f"every WAV and square JPEG once: {baseline:.2f} s ({1000 * baseline / n:.1f} ms/clip)")
    timed("release (fingerprints, hashes, files)", lambda: build_release(manifest, ReleaseOptions(
        root=built.root, out=work / "rel", version="0.0.1", annotations=built.annotations, date="2026-02-01",
        progress=False)))
    timed("verify, identical copy (hashes)", lambda: verify(VerifyOptions(work / "rel", built.root,
                                                                          progress=False)))
    copy = work / "copy"
    shutil.copytree(built.root, copy)
    for path in (copy / "audio").glob("*.wav"):   # touch one sample: bytes differ, content the same
        data, rate = soundfile.read(path, dtype="int16")
        data[0, 0] ^= 1
        soundfile.write(path, data, rate, subtype="PCM_16")
    for path in list((copy / "frames").glob("*.jpg")) + list((copy / "frames_full").glob("*.jpg")):
        with Image.open(path) as image:            # another encoder setting: same size, other bytes
            image.load()
            image.save(path, quality=80)
    timed("verify, changed bytes (format+decode+compare)", lambda: verify(VerifyOptions(
        work / "rel", copy, progress=False)))
    timed("export --layout llinet", lambda: export(manifest, ExportOptions(
        root=built.root, out=work / "official", annotations=built.annotations, progress=False)))
    for fmt in ("webdataset", "hf"):
        export(manifest, ExportOptions(root=built.root, out=work / fmt, format=fmt, annotations=built.annotations,
                                       progress=False))
        timed(f"verify the {fmt} export (hashes)", lambda fmt=fmt: verify(VerifyOptions(
            work / "rel", work / fmt, progress=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--clips", type=int, default=120)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        separation(args.seeds, Path(tmp))
        corruption(Path(tmp))
        throughput(args.clips, Path(tmp))


if __name__ == "__main__":
    main()
