"""trim: exact 3 s windows from real FFmpeg-made clips (several codecs, rates, channel counts)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile

from builder.commands.main import main
from builder.demo.videos import LOUD, QUIET
from builder.manifest.schema import read_manifest, write_manifest
from builder.media.ffmpeg import decode_audio
from builder.media.trim import TrimOptions, rms_dbfs, trim, window_offset_samples
from support.media import by_name, media_manifest

NAMES = ["h264_aac", "vp9_opus", "mpeg4_mp3", "short4", "silent", "corrupt", "video_only"]


@pytest.fixture()
def root_and_manifest(tmp_path, media):
    root = tmp_path / "root"
    return root, media_manifest(root, media, NAMES)


def test_window_policies_pure():
    rate = 100
    audio = np.full((2, 1000), 0.1, dtype=np.float32)
    audio[:, 620:920] = 0.9                      # loud 6.2 s .. 9.2 s
    assert window_offset_samples(audio, 300, "first", rate) == 0
    assert window_offset_samples(audio, 300, "center", rate) == 350
    assert window_offset_samples(audio, 300, "loudest", rate) == 620
    flat = np.full((1, 1000), 0.5, dtype=np.float32)
    assert window_offset_samples(flat, 300, "loudest", rate) == 0   # ties: earliest
    assert window_offset_samples(audio[:, :200], 300, "center", rate) == 0  # shorter than the window
    assert rms_dbfs(np.zeros((1, 10))) == float("-inf")
    assert rms_dbfs(np.full((1, 10), 0.001)) == pytest.approx(-60.0)


def test_trim_default_policy_formats_and_flags(root_and_manifest):
    root, manifest = root_and_manifest
    out, counts = trim(manifest, TrimOptions(root=root, progress=False))
    ok = out[out["trim_status"] == "ok"]
    assert set(ok["name"]) == {"h264_aac", "vp9_opus", "mpeg4_mp3", "short4", "silent"}
    for row in ok.itertuples():
        info = soundfile.info(root / row.audio_path)
        assert (info.format, info.subtype, info.samplerate) == ("WAV", "PCM_16", 44100)
        assert info.frames == 132_300                # exactly 3 s at 44.1 kHz, whatever the source rate
        assert row.window_offset == 0.0              # default policy "first" (the paper)
    # channels kept: stereo sources stay stereo, the mono MP3 stays mono (and is resampled 22.05k -> 44.1k)
    assert soundfile.info(root / by_name(out, "vp9_opus").audio_path).channels == 2
    assert soundfile.info(root / by_name(out, "mpeg4_mp3").audio_path).channels == 1
    assert by_name(out, "silent").trim_flags == "silent"
    assert by_name(out, "h264_aac").trim_flags == ""
    assert by_name(out, "short4").trim_flags == ""  # 4 s is enough for a 3 s window
    # corrupt input and a file without audio: a clear per-clip error, the run went on
    for name in ("corrupt", "video_only"):
        row = by_name(out, name)
        assert row.trim_status == "error" and row.audio_path == ""
        assert "cannot decode audio" in row.trim_error
    assert counts["ok"] == 5 and counts["error"] == 2 and counts["silent"] == 1
    # The written samples are the source's first 3 s (16-bit quantisation apart).
    source, rate = decode_audio(root / by_name(out, "h264_aac").media_path, sample_rate=44100)
    written, _ = soundfile.read(root / by_name(out, "h264_aac").audio_path, dtype="float32", always_2d=True)
    assert np.max(np.abs(written.T - source[:, :132_300])) < 2.0 / 32768


def test_loudest_and_center_pick_the_right_window(root_and_manifest):
    root, manifest = root_and_manifest
    out, _ = trim(manifest, TrimOptions(root=root, policy="loudest", progress=False))
    # h264_aac is loud from 6 s to 9 s; vp9_opus (48 kHz Opus, resampled) from 1 s to 4 s.
    assert float(by_name(out, "h264_aac").window_offset) == pytest.approx(6.0, abs=0.03)
    assert float(by_name(out, "vp9_opus").window_offset) == pytest.approx(1.0, abs=0.03)
    loud, _ = soundfile.read(root / by_name(out, "h264_aac").audio_path, always_2d=True)
    assert math.sqrt(np.mean(loud ** 2)) == pytest.approx(LOUD / math.sqrt(2), rel=0.05)

    out, _ = trim(manifest, TrimOptions(root=root, policy="center", progress=False))
    # AAC decodes to whole 1024-sample frames (441,344 samples), so the centre moves by ~4 ms.
    assert float(by_name(out, "h264_aac").window_offset) == pytest.approx(3.5, abs=0.01)
    assert float(by_name(out, "short4").window_offset) == pytest.approx(0.5, abs=0.03)
    centre, _ = soundfile.read(root / by_name(out, "h264_aac").audio_path, always_2d=True)
    # 3.5 s .. 6.5 s: 2.5 s quiet + 0.5 s loud
    expected = math.sqrt((2.5 * QUIET ** 2 + 0.5 * LOUD ** 2) / 3 / 2)
    assert math.sqrt(np.mean(centre ** 2)) == pytest.approx(expected, rel=0.05)


def test_options_rate_mono_and_too_short(root_and_manifest):
    root, manifest = root_and_manifest
    out, _ = trim(manifest, TrimOptions(root=root, window=5.0, sample_rate=16000, mono=True, progress=False))
    row = by_name(out, "short4")
    info = soundfile.info(root / row.audio_path)
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 80_000)
    assert row.trim_flags == "too_short"
    data, _ = soundfile.read(root / row.audio_path)
    assert np.all(data[-15_000:] == 0)           # ~4 s of audio (+ codec padding), zero-padded to 5 s
    assert np.abs(data[:16000]).max() > 0.01
    assert by_name(out, "h264_aac").trim_flags == ""


def test_resume_reuses_and_parameter_change_recomputes(root_and_manifest):
    root, manifest = root_and_manifest
    first, counts = trim(manifest, TrimOptions(root=root, progress=False))
    path = root / by_name(first, "h264_aac").audio_path
    mtime = path.stat().st_mtime_ns
    again, counts = trim(manifest, TrimOptions(root=root, progress=False))
    assert counts["reused"] == 5 and counts["ok"] == 0 and counts["error"] == 2   # errors are retried
    assert path.stat().st_mtime_ns == mtime
    assert again["window_offset"].tolist() == first["window_offset"].tolist()
    changed, counts = trim(manifest, TrimOptions(root=root, policy="loudest", progress=False))
    assert counts["ok"] == 5 and counts["reused"] == 0
    assert float(by_name(changed, "h264_aac").window_offset) == pytest.approx(6.0, abs=0.03)


def test_trim_cli_writes_columns(root_and_manifest, capsys):
    root, manifest = root_and_manifest
    write_manifest(manifest, root / "manifest.csv")
    assert main(["trim", "--root", str(root), "--policy", "center", "--no-progress"]) == 0
    out = read_manifest(root / "manifest.csv")
    assert {"audio_path", "window_offset", "trim_status", "trim_flags"} <= set(out.columns)
    assert (out["trim_status"] == "ok").sum() == 5
    assert "trim: " in capsys.readouterr().out
    # The model helper reads audio_path relative to the media root.
    assert all((root / p).is_file() for p in out.loc[out["trim_status"] == "ok", "audio_path"])


def test_a_short_output_is_redone(root_and_manifest):
    """Outputs are renamed into place without fsync; a file whose size changed (power loss) is redone."""
    root, manifest = root_and_manifest
    first, _ = trim(manifest, TrimOptions(root=root, progress=False))
    path = root / by_name(first, "h264_aac").audio_path
    path.write_bytes(path.read_bytes()[:1000])
    _, counts = trim(manifest, TrimOptions(root=root, progress=False))
    assert counts["ok"] == 1 and counts["reused"] == 4
    assert soundfile.info(path).frames == 132_300


def test_loudest_block_sums_equal_the_per_sample_search():
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal((2, 44_100 * 4)) * np.linspace(0.1, 1.0, 44_100 * 4) ** 3).astype(np.float32)
    audio[:, 100_000:120_000] *= 4
    fast = window_offset_samples(audio, 44_100, "loudest", 44_100)      # 1 s = 100 hops of 441
    odd = window_offset_samples(audio, 44_101, "loudest", 44_100)       # not a whole number of hops
    power = np.square(audio.astype(np.float64)).sum(axis=0)
    starts = np.arange(0, audio.shape[1] - 44_100 + 1, 441)
    brute = max(starts, key=lambda s: power[s:s + 44_100].sum())
    assert fast == brute and abs(odd - brute) <= 441
