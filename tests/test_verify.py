"""verify: identical, re-encoded (equivalent), time-shifted / swapped / corrupted (different), missing."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from builder.commands.main import main
from builder.demo.synthetic_release import clip_seed, make_dataset, render_frame, source_audio, write_jpeg, write_wav
from builder.errors import InputError
from builder.manifest.schema import read_manifest
from builder.release.fingerprint import THRESHOLDS, audio_similarity, frame_similarity
from builder.release.verify import VerifyOptions, verify
from support.release import release_of

FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-threads", "1"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def release(built, tmp_path_factory):
    return release_of(built, tmp_path_factory.mktemp("rel") / "v1")


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


def test_the_build_itself_is_identical(release, built, tmp_path, capsys):
    assert main(["verify", str(release), str(built.root), "--report", str(tmp_path / "r.json"),
                 "--no-progress"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"identical": 14, "equivalent": 0, "different": 0, "missing": 0}
    assert report["passed"] is True and "PASSED" in capsys.readouterr().out


def test_packed_media_tarball_verifies_directly(release, tmp_path):
    report = run(release, release / "media-1.0.0.tar", extract_to=tmp_path / "x")
    assert report.counts()["identical"] == 14 and (tmp_path / "x" / "audio").is_dir()


def test_reencoded_copy_is_equivalent(release, copy, tmp_path):
    """Audio through AAC 64 kb/s and back at 44.1 kHz; frames re-encoded by FFmpeg at 2x size, low quality."""
    for clip_id in released_ids(release):
        wav, jpg = copy / "audio" / f"{clip_id}.wav", copy / "frames" / f"{clip_id}.jpg"
        m4a = tmp_path / f"{clip_id}.m4a"
        subprocess.run(FFMPEG + ["-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(m4a)], check=True)
        subprocess.run(FFMPEG + ["-i", str(m4a), "-ar", "44100", "-c:a", "pcm_s16le", str(wav)], check=True)
        subprocess.run(FFMPEG + ["-i", str(jpg), "-vf", "scale=192:192", "-q:v", "12", str(tmp_path / "f.jpg")],
                       check=True)
        shutil.move(tmp_path / "f.jpg", jpg)
    report = run(release, copy)
    assert report.counts() == {"identical": 0, "equivalent": 14, "different": 0, "missing": 0}
    worst_audio = min(c["audio_correlation"] for c in report.clips)
    worst_frame = min(c["frame_correlation"] for c in report.clips)
    assert worst_audio > 0.9 and worst_frame > 0.95
    assert report.passed()


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
    assert main(["verify", str(release), str(copy), "--no-progress", "--report", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert f"different {shifted}" in out and "FAILED" in out


def test_missing_and_corrupted_files(release, copy, tmp_path, capsys):
    ids = released_ids(release)
    (copy / "audio" / f"{ids[1]}.wav").unlink()
    (copy / "frames" / f"{ids[2]}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    wav = copy / "audio" / f"{ids[5]}.wav"
    wav.write_bytes(wav.read_bytes()[:200])                        # truncated mid-header/data
    clips = by_id(run(release, copy))
    assert clips[ids[1]]["status"] == "missing" and "audio file missing" in clips[ids[1]]["reason"]
    assert clips[ids[2]]["status"] == "different" and "unreadable frame" in clips[ids[2]]["reason"]
    assert clips[ids[5]]["status"] == "different"
    # link rot may be tolerated; a corrupted file never is
    args = ["verify", str(release), str(copy), "--no-progress", "--report", str(tmp_path / "r.json")]
    assert main(args + ["--max-missing", "0.1"]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["counts"] == {"identical": 11, "equivalent": 0, "different": 2, "missing": 1}
    assert "FAILED" in capsys.readouterr().out


def test_link_rot_tolerance(release, copy, tmp_path):
    ids = released_ids(release)
    (copy / "audio" / f"{ids[0]}.wav").unlink()
    args = ["verify", str(release), str(copy), "--no-progress", "--report", str(tmp_path / "r.json")]
    assert main(args) == 1
    assert main(args + ["--max-missing", "0.1"]) == 0           # 1 of 14 missing <= 10 %
    assert json.loads((tmp_path / "r.json").read_text())["counts"]["missing"] == 1


def test_rebuild_with_its_own_manifest_and_official_export(release, built, tmp_path):
    from builder.export.stage import ExportOptions, export
    out = tmp_path / "official"
    export(read_manifest(built.manifest_path),
           ExportOptions(root=built.root, out=out, annotations=built.annotations, progress=False))
    report = run(release, out)
    assert report.layout == "llinet-export" and report.counts()["identical"] == 14


def test_tampered_release_and_bad_inputs(release, built, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(release, bad)
    ids = bad / "clips.csv"
    ids.write_text(ids.read_text().replace("Accordion", "Accordian", 1))
    with pytest.raises(InputError, match="does not match SHA256SUMS"):
        run(bad, built.root)
    (bad / "SHA256SUMS").unlink()
    assert main(["verify", str(bad), str(built.root), "--no-progress"]) == 2
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
