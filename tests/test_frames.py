"""frames: the exact frame at the window centre, checked by pixel content (colour per second, grey per frame)."""
from __future__ import annotations

import math
import subprocess

import cv2
import ffmpeg
import numpy as np
import pytest

from builder.commands.main import main
from builder.demo.videos import grey_to_index_mod20, second_colour
from builder.errors import InputError
from builder.manifest.schema import read_manifest, write_manifest
from builder.media.ffmpeg import ffmpeg_argv, ffprobe_argv, probe
from builder.media.frames import FrameOptions, centre_square, frame_flags, frame_times, frames, grab_frames
from support.media import by_name, media_manifest

NAMES = ["h264_aac", "vp9_opus", "mpeg4_mp3", "portrait", "dark", "corrupt"]


@pytest.fixture()
def root_and_manifest(tmp_path, media):
    root = tmp_path / "root"
    manifest = media_manifest(root, media, NAMES)
    manifest["window_offset"] = [6.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    manifest["window_seconds"] = 3.0
    manifest["trim_status"] = "ok"
    return root, manifest


def expected_frame(path, t):
    """(second colour, frame index mod 20) of the frame on screen at t, from the stream's start time and fps."""
    video = probe(path).video
    start = float(subprocess.run(ffprobe_argv(path, "-select_streams", "v:0", "-show_entries", "stream=start_time",
                                              "-of", "csv=p=0"),
                                 capture_output=True, text=True, check=True).stdout.strip() or 0)
    index = math.floor((t - start) * video.fps + 1e-9)
    return second_colour(int(index / video.fps + 1e-9)), index % 20


def read_patches(image):
    """Mean colour of the left half and mean grey of the right half (away from the seam), as RGB."""
    rgb = image[..., ::-1].astype(float)
    h, w, _ = rgb.shape
    left = rgb[4:h - 4, 4:w // 2 - 6].reshape(-1, 3).mean(axis=0)
    right = rgb[4:h - 4, w // 2 + 6:w - 4].mean()
    return left, right


def test_frame_times_and_crop_pure():
    assert frame_times(6.0, 3.0, 1) == [7.5]
    assert frame_times(0.0, 3.0, 3) == [0.5, 1.5, 2.5]
    image = np.arange(4 * 6 * 3).reshape(4, 6, 3)
    assert centre_square(image).shape == (4, 4, 3)
    assert np.array_equal(centre_square(image), image[:, 1:5])
    assert centre_square(image.transpose(1, 0, 2)).shape == (4, 4, 3)
    assert frame_flags(np.zeros((8, 8, 3)), 16, 4) == ["dark", "uniform"]
    assert frame_flags(np.full((8, 8, 3), 200.0), 16, 4) == ["uniform"]
    noisy = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(float)
    assert frame_flags(noisy, 16, 4) == []


def test_centre_frame_is_exact_by_pixels(root_and_manifest):
    root, manifest = root_and_manifest
    out, counts = frames(manifest, FrameOptions(root=root, progress=False))
    for name, offset in (("h264_aac", 6.0), ("vp9_opus", 1.0), ("mpeg4_mp3", 0.0)):
        row = by_name(out, name)
        assert row.frames_status == "ok"
        assert float(row.frame_time) == pytest.approx(offset + 1.5)
        media = root / row.media_path
        colour, index = expected_frame(media, offset + 1.5)
        full = cv2.imread(str(root / row.frame_full_path))
        left, right = read_patches(full)
        assert np.abs(left - colour).max() < 12, (name, left, colour)
        assert grey_to_index_mod20(right) == index, (name, right, index)
        square = cv2.imread(str(root / row.frame_path))
        height = probe(media).video.height
        assert square.shape[:2] == (height, height) == (row.frame_size, row.frame_size)
        assert full.shape[:2] == (row.frame_height, row.frame_width)
    assert counts["ok"] == 5 and counts["error"] == 1


def test_frame_pixels_equal_ffmpeg_accurate_seek(media):
    """Decoded frame == FFmpeg's own accurate seek (decode, not nearest keyframe) at several times."""
    path = media["h264_aac"]  # keyframes every 2 s: 7.5 s lies between keyframes
    times = [0.05, 3.35, 7.5, 9.95]
    for (rgb, pts), t in zip(grab_frames(path, times), times, strict=True):
        h, w, _ = rgb.shape
        # ffmpeg -ss T yields the first frame with pts >= T, so ask it for the pts we say is on screen.
        # -ss as an input option: FFmpeg's accurate seek (decodes from the keyframe before T, drops earlier frames).
        grab = ffmpeg.input(str(path), ss=f"{pts}").output("pipe:1", f="rawvideo", pix_fmt="rgb24",
                                                            **{"frames:v": "1"})
        raw = subprocess.run(ffmpeg_argv(grab, "-v", "error"), capture_output=True, check=True).stdout
        reference = np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)
        assert np.abs(rgb.astype(int) - reference.astype(int)).mean() < 1.0, t
        assert pts == pytest.approx(math.floor(t * 10 + 1e-9) / 10)


def test_portrait_crop_dark_flag_and_error(root_and_manifest):
    root, manifest = root_and_manifest
    out, _ = frames(manifest, FrameOptions(root=root, progress=False))
    portrait = by_name(out, "portrait")
    square = cv2.imread(str(root / portrait.frame_path))
    assert square.shape[:2] == (120, 120)        # 120x160 portrait: the square is the width
    assert by_name(out, "dark").frame_flags == "dark,uniform"
    assert by_name(out, "h264_aac").frame_flags == ""
    bad = by_name(out, "corrupt")
    assert bad.frames_status == "error" and "cannot decode video" in bad.frames_error and bad.frame_path == ""


def test_several_frames_evenly_spaced(root_and_manifest, media):
    root, manifest = root_and_manifest
    out, _ = frames(manifest, FrameOptions(root=root, frames_per_clip=3, progress=False))
    row = by_name(out, "h264_aac")
    times = [float(t) for t in row.frame_times.split(",")]
    assert times == pytest.approx([6.5, 7.5, 8.5])
    paths = row.frame_paths.split(",")
    assert len(paths) == 3 and row.frame_path == paths[1]
    for rel, t in zip(paths, times, strict=True):
        left, right = read_patches(cv2.imread(str(root / rel)))
        colour, index = expected_frame(root / row.media_path, t)
        assert np.abs(left - colour).max() < 12 and grey_to_index_mod20(right) == index


def test_resume_and_window_change(root_and_manifest):
    root, manifest = root_and_manifest
    first, _ = frames(manifest, FrameOptions(root=root, progress=False))
    again, counts = frames(manifest, FrameOptions(root=root, progress=False))
    assert counts["reused"] == 5 and counts["ok"] == 0
    moved = manifest.copy()
    moved.loc[moved["name"] == "h264_aac", "window_offset"] = 0.0   # trim re-ran with another policy
    out, counts = frames(moved, FrameOptions(root=root, progress=False))
    assert counts["ok"] == 1 and counts["reused"] == 4
    assert float(by_name(out, "h264_aac").frame_time) == pytest.approx(1.5)


def test_needs_trim_first(root_and_manifest):
    root, manifest = root_and_manifest
    with pytest.raises(InputError, match="run `llinet-build trim` first"):
        frames(manifest.drop(columns=["window_offset"]), FrameOptions(root=root, progress=False))


def test_frames_cli(root_and_manifest):
    root, manifest = root_and_manifest
    write_manifest(manifest, root / "manifest.csv")
    assert main(["frames", "--root", str(root), "--no-progress"]) == 0
    out = read_manifest(root / "manifest.csv")
    ok = out[out["frames_status"] == "ok"]
    assert len(ok) == 5
    assert all((root / p).is_file() for p in ok["frame_path"])
    assert ok["frame_time"].astype(float).tolist() == pytest.approx([7.5, 2.5, 1.5, 1.5, 1.5])
