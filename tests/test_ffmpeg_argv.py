"""FFmpeg/ffprobe command lines built from ffmpeg-python graphs equal the hand-written ones they replaced.

ffmpeg-python writes each file's options in sorted order, so the lists are compared per file:
same global options first, same inputs in the same order, and per input/output the same options
(as a multiset) and the same ``-map`` sequence (that order decides the output's stream order).
Two renders from the old and the new command line also come out byte for byte the same.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ffmpeg
import numpy as np
import pytest
import soundfile

import builder.media.ffmpeg as media
from builder.demo.videos import SynthSpec, synth_argv, synth_audio, synth_frames
from builder.demo.zeroshot_set import class_video_argv, tone, write_wav
from builder.media.ffmpeg import ffmpeg_argv, ffprobe_argv, probe_argv
from support.media import CLIPS

GLOBAL_FLAGS = {"-y", "-nostdin", "-hide_banner"}
GLOBAL_WITH_VALUE = {"-v", "-loglevel"}
FILE_FLAGS = {"-shortest"}

# The option lists synth_clip wrote by hand, per codec.
OLD_VIDEO_OPTS = {
    "libx264": ["-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p"],
    "libvpx-vp9": ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "0", "-crf", "20", "-pix_fmt", "yuv420p"],
    "libvpx": ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "2M", "-pix_fmt", "yuv420p"],
    "mpeg4": ["-q:v", "2", "-pix_fmt", "yuv420p"],
}
OLD_AUDIO_OPTS = {"aac": ["-b:a", "160k"], "libopus": ["-b:a", "128k"], "libmp3lame": ["-b:a", "160k"],
                  "libvorbis": ["-q:a", "5"], "pcm_s16le": []}


def old_synth_argv(path: Path, spec: SynthSpec, wav: Path) -> list[str]:
    args = ["ffmpeg", "-v", "error", "-y"]
    if spec.vcodec is not None:
        args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{spec.width}x{spec.height}",
                 "-r", f"{spec.fps:g}", "-i", "pipe:0"]
    if spec.acodec is not None:
        args += ["-i", str(wav)]
    if spec.vcodec is not None:
        args += ["-map", "0:v", "-c:v", spec.vcodec, *OLD_VIDEO_OPTS.get(spec.vcodec, []),
                 "-g", str(max(1, int(round(spec.gop_seconds * spec.fps))))]
    if spec.acodec is not None:
        args += ["-map", f"{1 if spec.vcodec else 0}:a", "-c:a", spec.acodec, *OLD_AUDIO_OPTS.get(spec.acodec, [])]
    if path.suffix in (".mp4", ".m4a", ".mov"):
        args += ["-movflags", "+faststart"]
    return args + ["-t", f"{spec.duration:g}", str(path.resolve())]


def old_class_video_argv(out: Path, wav: Path, fps: int, size: int) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", str(fps), "-i", "pipe:0",
            "-i", str(wav), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(fps),
            "-c:a", "aac", "-b:a", "128k", "-shortest", str(out)]


def sections(argv: list[str]) -> tuple[str, list[str], list[tuple[str, str, list, list]]]:
    """(binary, leading global options, [(kind, target, sorted options, -map sequence)] per input/output)."""
    binary, rest = argv[0], argv[1:]
    index, leading = 0, []
    while index < len(rest) and (rest[index] in GLOBAL_FLAGS or rest[index] in GLOBAL_WITH_VALUE):
        width = 1 if rest[index] in GLOBAL_FLAGS else 2
        leading += rest[index:index + width]
        index += width
    files, options, maps = [], [], []
    while index < len(rest):
        token = rest[index]
        assert token not in GLOBAL_FLAGS | GLOBAL_WITH_VALUE, f"global option {token} after a file in {argv}"
        if token == "-i":
            files.append(("input", rest[index + 1], sorted(options, key=repr), maps))
            options, maps, index = [], [], index + 2
        elif token == "-map":
            maps.append(rest[index + 1])
            index += 2
        elif token in FILE_FLAGS:
            options.append((token, None))
            index += 1
        elif token.startswith("-"):
            options.append((token, rest[index + 1]))
            index += 2
        else:
            files.append(("output", token, sorted(options, key=repr), maps))
            options, maps, index = [], [], index + 1
    assert not options and not maps, f"trailing options in {argv}"
    return binary, leading, files


@pytest.fixture(autouse=True)
def plain_binaries(monkeypatch):
    """The hand-written lists said "ffmpeg"/"ffprobe": compare against those names whatever the environment sets."""
    monkeypatch.setattr(media, "FFMPEG", "ffmpeg")
    monkeypatch.setattr(media, "FFPROBE", "ffprobe")


@pytest.mark.parametrize("name", [name for name, (_, spec) in CLIPS.items() if spec is not None])
def test_synth_clip_argv_equals_the_hand_written_one(name, tmp_path):
    file_name, spec = CLIPS[name]
    path, wav = tmp_path / file_name, tmp_path / "audio.wav"
    new, old = synth_argv(path, spec, wav), old_synth_argv(path, spec, wav)
    assert sections(new) == sections(old)
    assert new[:4] == ["ffmpeg", "-v", "error", "-y"] and new[-1] == str(path.resolve())


def test_class_video_argv_equals_the_hand_written_one_plus_explicit_maps(tmp_path):
    """The old list let FFmpeg's default selection pick the one video (input 0) and the one audio stream
    (input 1); ffmpeg-python maps both streams of a two-stream output explicitly, which picks the same."""
    out, wav = tmp_path / "v.mp4", tmp_path / "tone.wav"
    binary, leading, files = sections(class_video_argv(out, wav, fps=10, size=160))
    old_binary, old_leading, old_files = sections(old_class_video_argv(out, wav, 10, 160))
    assert (binary, leading) == (old_binary, old_leading)
    assert files[:-1] == old_files[:-1]
    kind, target, options, maps = files[-1]
    assert (kind, target, options) == old_files[-1][:3] and old_files[-1][3] == [] and maps == ["0:v", "1:a"]


def test_probe_argv_is_the_hand_written_one():
    assert probe_argv("/data/clip.mp4") == ["ffprobe", "-v", "error", "-print_format", "json", "-show_format",
                                            "-show_streams", "/data/clip.mp4"]
    assert probe_argv("http://h/v.mp4", ["-rw_timeout", "5"])[-3:] == ["-rw_timeout", "5", "http://h/v.mp4"]
    assert ffprobe_argv(Path("/d/x.mp4"), "-of", "json") == ["ffprobe", "-v", "error", "-of", "json", "/d/x.mp4"]


def test_input_options_stay_before_their_input():
    """-ss/-t given to ffmpeg.input are input options (seek in the input), not output ones (decode and drop)."""
    argv = ffmpeg_argv(ffmpeg.input("http://h/v.mp4", ss="3.5", t="10").output("o.mp4", f="mp4"), "-v", "error")
    assert argv == ["ffmpeg", "-v", "error", "-ss", "3.5", "-t", "10", "-i", "http://h/v.mp4", "-f", "mp4", "o.mp4"]


def test_binary_overrides_reach_the_argv(tmp_path):
    code = ("from builder.media.ffmpeg import ffmpeg_argv, ffprobe_argv; import ffmpeg; "
            "print(ffmpeg_argv(ffmpeg.input('a').output('b'))[0], ffprobe_argv('a')[0])")
    env = {**os.environ, "LLINET_FFMPEG": "/opt/ff/ffmpeg", "LLINET_FFPROBE": "/opt/ff/ffprobe"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["/opt/ff/ffmpeg", "/opt/ff/ffprobe"]


def _render(argv: list[str], frames: list[bytes]) -> None:
    subprocess.run(argv, input=b"".join(frames), capture_output=True, check=True, timeout=120)


def test_old_and_new_command_lines_render_the_same_bytes(tmp_path):
    """MP4 output is deterministic, so equal files mean the reordered options changed nothing."""
    spec = SynthSpec(duration=2.0)
    wav = tmp_path / "audio.wav"
    soundfile.write(wav, synth_audio(spec), spec.sample_rate, subtype="FLOAT")
    frames = list(synth_frames(spec))
    _render(old_synth_argv(tmp_path / "old.mp4", spec, wav), frames)
    _render(synth_argv(tmp_path / "new.mp4", spec, wav), frames)
    assert (tmp_path / "old.mp4").read_bytes() == (tmp_path / "new.mp4").read_bytes()

    tone_wav = tmp_path / "tone.wav"
    write_wav(tone_wav, tone(0.5, np.random.default_rng(3), 44100, 2.0), 44100)
    picture = [bytes([index * 12 % 256]) * (64 * 64 * 3) for index in range(10)]
    _render(old_class_video_argv(tmp_path / "old_class.mp4", tone_wav, 5, 64), picture)
    _render(class_video_argv(tmp_path / "new_class.mp4", tone_wav, fps=5, size=64), picture)
    assert (tmp_path / "old_class.mp4").read_bytes() == (tmp_path / "new_class.mp4").read_bytes()
