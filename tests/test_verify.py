"""verify on a media root: identical, re-encoded (equivalent); resampled, down-mixed, re-containered, corrupted,
resized, time-shifted or swapped files (different, with the finding named); missing; what it refuses."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import ffmpeg
import numpy as np
import pandas as pd
import pytest

from builder.commands.main import main
from builder.demo.synthetic_release import clip_seed, render_frame, source_audio, write_jpeg, write_wav
from builder.errors import InputError
from builder.media.ffmpeg import ffmpeg_argv
from builder.release.fingerprint import THRESHOLDS, audio_similarity, frame_similarity
from builder.release.verify import VerifyOptions, verify

GLOBAL_OPTIONS = ("-nostdin", "-v", "error", "-y")


def reencode(source, target, **options: str) -> None:
    """``source`` -> ``target`` through FFmpeg with output ``options``, decoding on one thread."""
    subprocess.run(ffmpeg_argv(ffmpeg.input(str(source), threads="1").output(str(target), **options),
                               *GLOBAL_OPTIONS), check=True)


@pytest.fixture
def copy(built, tmp_path):
    dest = tmp_path / "rebuild"
    shutil.copytree(built.root, dest)
    return dest


def released_ids(release) -> list[str]:
    ids = pd.read_csv(release / "clips.csv", dtype=str, keep_default_na=False)
    return ids.loc[ids["released"] == "1", "clip_id"].tolist()


def run(release, data, **kw):
    return verify(VerifyOptions(release=release, data=data, progress=False, **kw))


def by_id(report) -> dict[str, dict]:
    return {c["clip_id"]: c for c in report.clips}


def verify_cli(release, data, *extra) -> list[str]:
    return ["verify", "--release", str(release), "--root", str(data), "--no-progress", *extra]


def findings_of(clip: dict) -> dict[tuple[str, str], dict]:
    return {(f["role"], f["field"]): f for f in clip["findings"]}


def trimmed_wav(path, frames: int) -> None:
    """Rewrite a WAV as trim would: exactly ``frames`` samples, 16-bit PCM, same rate and channels."""
    import soundfile
    data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    write_wav(path, data[:frames], rate)


def test_the_build_itself_is_identical(release, built, tmp_path, capsys, monkeypatch):
    assert main(verify_cli(release, built.root, "--report", str(tmp_path / "r.json"))) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"identical": 14, "equivalent": 0, "different": 0, "missing": 0}
    assert report["passed"] is True and report["layout"] == "media-root+manifest"
    assert "PASSED" in capsys.readouterr().out
    # without --report nothing is written, wherever the user stands
    monkeypatch.chdir(tmp_path / "..")
    before = sorted(Path(".").iterdir())
    assert main(verify_cli(release, built.root)) == 0
    assert sorted(Path(".").iterdir()) == before and "no report written" in capsys.readouterr().out


def test_packed_media_tarball_verifies_directly(release, tmp_path):
    report = run(release, release / "media-1.0.0.tar", extract_to=tmp_path / "x")
    assert report.counts()["identical"] == 14 and (tmp_path / "x" / "audio").is_dir()
    assert report.layout == "media-root"


def test_reencoded_copy_is_equivalent(release, copy, tmp_path):
    """Audio through AAC 64 kb/s and back, cut to the window as trim cuts it; frames re-encoded at quality 12.

    Same formats (rate, channels, samples, size), other bytes, content within the thresholds.
    """
    for clip_id in released_ids(release):
        wav, jpg = copy / "audio" / f"{clip_id}.wav", copy / "frames" / f"{clip_id}.jpg"
        m4a = tmp_path / f"{clip_id}.m4a"
        reencode(wav, m4a, **{"c:a": "aac", "b:a": "64k"})
        reencode(m4a, wav, **{"c:a": "pcm_s16le"})
        trimmed_wav(wav, 48000)                                  # AAC adds a frame of padding: 48128 samples
        reencode(jpg, tmp_path / "f.jpg", **{"q:v": "12"})
        shutil.move(tmp_path / "f.jpg", jpg)
    report = run(release, copy)
    assert report.counts() == {"identical": 0, "equivalent": 14, "different": 0, "missing": 0}, \
        [c["reason"] for c in report.clips]
    worst_audio = min(c["audio_correlation"] for c in report.clips)
    worst_frame = min(c["frame_correlation"] for c in report.clips)
    assert worst_audio > 0.9 and worst_frame > 0.95
    assert report.passed()


@pytest.mark.parametrize("rate", [22050, 48000])
def test_resampled_wav_is_different_and_says_the_rate(release, copy, tmp_path, capsys, rate):
    clip_id = released_ids(release)[0]
    wav = copy / "audio" / f"{clip_id}.wav"
    reencode(wav, tmp_path / "r.wav", ar=str(rate), **{"c:a": "pcm_s16le"})
    shutil.move(tmp_path / "r.wav", wav)
    clip = by_id(run(release, copy))[clip_id]
    assert clip["status"] == "different"
    found = findings_of(clip)
    assert found[("audio", "sample_rate")]["expected"] == 16000 and found[("audio", "sample_rate")]["actual"] == rate
    assert found[("audio", "samples")]["actual"] == rate * 3
    assert "audio_correlation" not in {f for _, f in found}         # the content alone would have passed
    assert main(verify_cli(release, copy, "--report", str(tmp_path / "v.json"))) == 1
    out = capsys.readouterr().out
    assert f"different {clip_id}: audio sample_rate: expected 16000, got {rate}" in out
    saved = json.loads((tmp_path / "v.json").read_text())
    listed = [f for c in saved["clips"] if c["clip_id"] == clip_id for f in c["findings"]]
    assert {"file": f"audio/{clip_id}.wav", "role": "audio", "field": "sample_rate", "expected": 16000,
            "actual": rate} == {k: v for k, v in listed[0].items() if k != "message"}


def test_wav_with_the_wrong_channel_count(release, copy, tmp_path, capsys):
    clip_id = released_ids(release)[1]
    wav = copy / "audio" / f"{clip_id}.wav"
    reencode(wav, tmp_path / "m.wav", ac="1", **{"c:a": "pcm_s16le"})
    shutil.move(tmp_path / "m.wav", wav)
    clip = by_id(run(release, copy))[clip_id]
    assert clip["status"] == "different"
    assert findings_of(clip)[("audio", "channels")] | {"message": ""} == {
        "file": f"audio/{clip_id}.wav", "role": "audio", "field": "channels", "expected": 2, "actual": 1,
        "message": ""}
    assert main(verify_cli(release, copy)) == 1
    assert f"different {clip_id}: audio channels: expected 2, got 1" in capsys.readouterr().out


def test_wav_reencoded_into_mp4(release, copy, tmp_path, capsys):
    """AAC in an MP4 container under the .wav name: the container and codec are named, not just 'unreadable'."""
    clip_id = released_ids(release)[2]
    wav = copy / "audio" / f"{clip_id}.wav"
    reencode(wav, tmp_path / "a.mp4", **{"c:a": "aac", "b:a": "128k"})
    shutil.move(tmp_path / "a.mp4", wav)
    clip = by_id(run(release, copy))[clip_id]
    found = findings_of(clip)
    assert clip["status"] == "different"
    assert found[("audio", "container")]["expected"] == "wav" and "mp4" in found[("audio", "container")]["actual"]
    assert found[("audio", "codec")]["actual"] == "aac"
    assert main(verify_cli(release, copy)) == 1
    assert "audio codec: expected pcm_s16le, got aac" in capsys.readouterr().out


def xor16(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 + offset
    for i in range(16):
        data[middle + i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_jpeg_with_a_corrupted_body(release, copy, capsys):
    """16 bytes XORed near the middle: Pillow decodes it silently and the fingerprint still matches."""
    from PIL import Image

    ids = released_ids(release)
    jpg, full = copy / "frames" / f"{ids[1]}.jpg", copy / "frames_full" / f"{ids[0]}.jpg"
    xor16(jpg, -28)
    xor16(full, 0)
    for path in (jpg, full):
        with Image.open(path) as image:
            image.load()                                            # no complaint from Pillow
    clips = by_id(run(release, copy))
    clip = clips[ids[1]]
    assert clip["status"] == "different"
    assert clip["frame_correlation"] > 0.99 and clip["frame_mad"] < 4      # the content check alone passes it
    decode = findings_of(clip)[("frame", "decode")]
    assert decode["file"] == f"frames/{ids[1]}.jpg" and decode["expected"] == "no decoder errors"
    assert "mjpeg: error count" in decode["actual"]                   # FFmpeg's strict decode
    assert clips[ids[0]]["status"] == "different"
    assert "Corrupt JPEG data: 73 extraneous bytes" in findings_of(clips[ids[0]])[("frame_full", "decode")]["actual"]
    assert main(verify_cli(release, copy)) == 1
    out = capsys.readouterr().out
    assert f"different {ids[1]}: frame is corrupt (decoder: mjpeg: error count" in out
    assert f"different {ids[0]}: frame full is corrupt (decoder: Corrupt JPEG data" in out


def test_resized_or_grey_frames_are_different(release, copy, tmp_path):
    from PIL import Image

    ids = released_ids(release)
    square, full = copy / "frames" / f"{ids[4]}.jpg", copy / "frames_full" / f"{ids[5]}.jpg"
    reencode(square, tmp_path / "s.jpg", vf="scale=192:192")
    shutil.move(tmp_path / "s.jpg", square)
    with Image.open(full) as image:
        image.convert("L").save(tmp_path / "g.jpg", quality=95)  # a grey JPEG: one component
    shutil.move(tmp_path / "g.jpg", full)
    clips = by_id(run(release, copy))
    assert findings_of(clips[ids[4]])[("frame", "width")]["actual"] == 192
    assert findings_of(clips[ids[5]])[("frame_full", "channels")] | {"message": ""} == {
        "file": f"frames_full/{ids[5]}.jpg", "role": "frame_full", "field": "channels", "expected": 3,
        "actual": 1, "message": ""}


def test_time_shifted_or_swapped_clips_are_different(release, copy, built, capsys, tmp_path):
    ids = released_ids(release)
    shifted, swapped_a, swapped_b = ids[0], ids[3], ids[4]
    # the same video 0.5 s later: another window of the same source, the frame 0.5 s later
    seed = clip_seed(shifted)
    write_wav(copy / "audio" / f"{shifted}.wav", source_audio(seed, 3.5, 16000)[8000:], 16000)
    full = render_frame(seed, 2.0, 128, 96)
    write_jpeg(copy / "frames" / f"{shifted}.jpg", full[:, 16:112])
    a, b = copy / "audio" / f"{swapped_a}.wav", copy / "audio" / f"{swapped_b}.wav"
    tmp = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(tmp)
    report = run(release, copy)
    clips = by_id(report)
    assert clips[shifted]["status"] == "different"
    assert "audio log-mel correlation" in clips[shifted]["reason"]
    assert clips[shifted]["audio_correlation"] < THRESHOLDS["audio_correlation"]
    assert clips[swapped_a]["status"] == clips[swapped_b]["status"] == "different"
    assert report.counts()["different"] == 3 and report.counts()["identical"] == 11
    assert main(verify_cli(release, copy)) == 1
    out = capsys.readouterr().out
    assert f"different {shifted}" in out and "FAILED" in out


def test_missing_and_corrupted_files(release, copy, tmp_path, capsys):
    ids = released_ids(release)
    (copy / "audio" / f"{ids[1]}.wav").unlink()
    (copy / "frames" / f"{ids[2]}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    wav = copy / "audio" / f"{ids[5]}.wav"
    wav.write_bytes(wav.read_bytes()[:200])                        # truncated mid-header/data
    padded = copy / "audio" / f"{ids[6]}.wav"
    padded.write_bytes(padded.read_bytes() + bytes(64))            # trailing bytes the header does not count
    clips = by_id(run(release, copy))
    assert clips[ids[1]]["status"] == "missing" and "audio file missing" in clips[ids[1]]["reason"]
    assert clips[ids[2]]["status"] == "different" and "unreadable frame" in clips[ids[2]]["reason"]
    assert clips[ids[5]]["status"] == "different"
    header = findings_of(clips[ids[5]])[("audio", "header")]
    assert "RIFF header says 192044 bytes, the file has 200" in header["actual"]
    assert clips[ids[6]]["status"] == "different"
    assert "the file has 192108" in findings_of(clips[ids[6]])[("audio", "header")]["actual"]
    # link rot may be tolerated; a corrupted file never is
    args = verify_cli(release, copy, "--report", str(tmp_path / "r.json"))
    assert main(args + ["--max-missing", "0.1"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"identical": 10, "equivalent": 0, "different": 3, "missing": 1}
    assert "FAILED" in capsys.readouterr().out


def test_link_rot_tolerance(release, copy, tmp_path):
    ids = released_ids(release)
    (copy / "audio" / f"{ids[0]}.wav").unlink()
    args = verify_cli(release, copy, "--report", str(tmp_path / "r.json"))
    assert main(args) == 1
    assert main(args + ["--max-missing", "0.1"]) == 0           # 1 of 14 missing <= 10 %
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["missing"] == 1


def test_unknown_folders_are_refused(release, built, tmp_path, capsys):
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"x")
    assert main(verify_cli(release, stranger)) == 2
    err = capsys.readouterr().err
    assert "not something verify can check" in err and "WebDataset" in err
    assert main(verify_cli(release, tmp_path / "nowhere")) == 2


def test_tampered_release_and_bad_inputs(release, built, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(release, bad)
    ids = bad / "clips.csv"
    ids.write_text(ids.read_text().replace("Accordion", "Accordian", 1))
    with pytest.raises(InputError, match="does not match SHA256SUMS"):
        run(bad, built.root)
    (bad / "SHA256SUMS").unlink()
    assert main(verify_cli(bad, built.root)) == 2
    assert "no SHA256SUMS" in capsys.readouterr().err
    with pytest.raises(InputError, match="not found"):
        run(release, tmp_path / "nowhere")
    with pytest.raises(InputError, match="unknown threshold"):
        VerifyOptions(release=release, data=built.root, thresholds={"colour": 1.0})
    with pytest.raises(InputError, match="within 0..1"):
        VerifyOptions(release=release, data=built.root, max_missing=2.0)


# --------------------------------------------------------------------------- the similarity functions
def test_audio_similarity_hand_cases():
    t = np.linspace(0, 1, 60)
    course = np.stack([np.sin(2 * np.pi * (k + 1) * t) for k in range(40)])
    assert audio_similarity(course, course) == pytest.approx(1.0)
    assert audio_similarity(course, course + 3.0) == pytest.approx(1.0)          # gain: a constant log offset
    assert audio_similarity(course, -course) == pytest.approx(-1.0)
    steady = np.tile(np.linspace(-5, 5, 40)[:, None], (1, 60))                      # no time course at all
    assert audio_similarity(steady, steady + 0.01 * np.ones_like(steady)) == pytest.approx(1.0)
    assert audio_similarity(course[:, :30], course) == pytest.approx(1.0)          # compared over the overlap


def test_frame_similarity_hand_cases():
    a = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    assert frame_similarity(a, a) == (pytest.approx(1.0), 0.0)
    corr, mad = frame_similarity(a, (a.astype(int) + 10).clip(0, 255).astype(np.uint8))
    assert corr > 0.99 and 9.0 < mad <= 10.0
    flat = np.full((32, 32), 7, np.uint8)
    assert frame_similarity(flat, flat) == (1.0, 0.0)
    assert frame_similarity(flat, a)[0] == 0.0
