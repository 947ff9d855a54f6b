"""What the media docs promise about fetched clips and their outputs, against a real local HTTP server,
real yt-dlp and FFmpeg: adoption checks, containers and codecs, mirrors without Range, corrupt sources,
resume keyed on the segment, stale trim/frames outputs, one boolean convention."""
from __future__ import annotations

import json
import subprocess

import ffmpeg
import pytest

from builder.commands.main import main
from builder.demo.videos import SynthSpec, corrupt_file, synth_clip
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.manifest.schema import read_manifest, write_manifest
from builder.media.ffmpeg import ffmpeg_argv, probe
from builder.media.frames import FrameOptions, frames
from builder.media.trim import TrimOptions, trim
from support.http_server import LocalHTTPServer, Route
from support.media import by_name, manifest_rows, media_manifest, ytid_for


def options(root, server, tmp_path, template="/v/{ytid}.mp4", **kw):
    base = dict(root=root, url_template=server.base_url + template, retries=2, backoff=0.01, timeout=3.0,
                progress=False, rate_state_dir=tmp_path / "rate", cache_dir=tmp_path / "ytdlp-cache")
    base.update(kw)
    return FetchOptions(**base)


def records(root, clip_id=None):
    lines = (root / "fetch_status.jsonl").read_text().splitlines()
    out = [json.loads(line) for line in lines]
    return [r for r in out if clip_id is None or r["clip_id"] == clip_id]


def row(df, clip_id):
    return df[df["clip_id"] == clip_id].iloc[0]


@pytest.fixture(scope="module")
def moov_at_end(tmp_path_factory, media):
    """The 10 s H.264/AAC clip with its index after the media data (FFmpeg's default MP4 layout): reading
    a section needs a seek, so a server that ignores Range breaks the section download."""
    path = tmp_path_factory.mktemp("layout") / "moov_at_end.mp4"
    graph = ffmpeg.input(str(media["h264_aac"])).output(str(path), c="copy")
    subprocess.run(ffmpeg_argv(graph, "-v", "error", "-y"), check=True)
    return path


def test_a_file_without_a_record_is_adopted_only_if_it_passes_the_download_checks(tmp_path, media):
    ids = [ytid_for(i) for i in range(3)]
    manifest = manifest_rows([(y, "A", True, i) for i, y in enumerate(ids)])
    root = tmp_path / "root"
    clips = root / "clips"
    synth_clip(clips / f"{ids[0]}_0.mp4", SynthSpec(duration=1.2))       # 1.2 s for a 10 s segment
    (clips / f"{ids[1]}_0.mp4").write_bytes(media["h264_aac"].read_bytes())  # a good file, record lost
    (clips / f"{ids[2]}_0.mp4").write_bytes(media["video_only"].read_bytes())  # no audio stream
    with LocalHTTPServer({f"/v/{y}.mp4": media["h264_aac"] for y in ids}) as server:
        out, _ = fetch(manifest, options(root, server, tmp_path))
        counts = [server.count(f"/v/{y}.mp4") for y in ids]
    assert counts[0] > 0 and counts[1] == 0 and counts[2] > 0
    assert set(out["fetch_status"]) == {"ok"}
    for clip_id in out["clip_id"]:
        assert row(out, clip_id).media_duration == pytest.approx(10.0, abs=0.5)
        info = probe(root / row(out, clip_id).media_path)
        assert info.has_audio and info.has_video and info.duration == pytest.approx(10.0, abs=0.5)
    assert [r.get("adopted", False) for r in records(root) if r["status"] == "ok"] == [False, True, False]


def test_container_and_codecs_are_recorded_and_trim_and_frames_read_both(tmp_path, media):
    """A WebM source stays WebM (VP9/Opus); an MP4 source is H.264/AAC. The manifest says which."""
    webm_id, mp4_id = ytid_for(1), ytid_for(2)
    routes = {f"/v/{webm_id}.webm": media["vp9_opus"], f"/v/{mp4_id}.mp4": media["h264_aac"]}
    manifest = manifest_rows([(webm_id, "A", True, 0), (mp4_id, "A", True, 1)])
    root = tmp_path / "root"
    with LocalHTTPServer(routes) as server:
        fetch(manifest.iloc[:1], options(root, server, tmp_path, template="/v/{ytid}.webm"))
        out, _ = fetch(manifest, options(root, server, tmp_path))     # the WebM clip is reused, not refetched
        assert server.count(f"/v/{webm_id}.mp4") == 0
    webm, mp4 = row(out, f"{webm_id}_0"), row(out, f"{mp4_id}_0")
    assert (webm.media_path, webm.media_container, webm.media_vcodec, webm.media_acodec) == (
        f"clips/{webm_id}_0.webm", "webm", "vp9", "opus")
    assert (mp4.media_path, mp4.media_container, mp4.media_vcodec, mp4.media_acodec) == (
        f"clips/{mp4_id}_0.mp4", "mp4", "h264", "aac")
    info = probe(root / webm.media_path)
    assert (info.video.codec_name, info.audio.codec_name) == ("vp9", "opus")
    trimmed, _ = trim(out, TrimOptions(root=root, progress=False))
    framed, _ = frames(trimmed, FrameOptions(root=root, progress=False))
    assert set(trimmed["trim_status"]) == {"ok"} and set(framed["frames_status"]) == {"ok"}


def test_a_mirror_that_ignores_range_stops_the_run_with_what_to_do(tmp_path, media, moov_at_end, capsys):
    ids = [ytid_for(i) for i in range(3)]
    manifest_path = tmp_path / "m.csv"
    write_manifest(manifest_rows([(y, "A", True, i) for i, y in enumerate(ids)]), manifest_path)
    root = tmp_path / "root"
    with LocalHTTPServer({f"/v/{y}.mp4": Route(moov_at_end, ignore_range=True) for y in ids}) as server:
        argv = ["fetch", "--manifest", str(manifest_path), "--root", str(root), "--url-template",
                server.base_url + "/v/{ytid}.mp4", "--workers", "1", "--backoff", "0.01", "--no-progress"]
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert "HALTED (range_ignored)" in err and "ignores HTTP Range requests" in err
        assert "honours Range" in err
        ranged = [r for r in server.requests_for(f"/v/{ids[0]}.mp4") if r.range]
        assert any(r.status == 200 for r in ranged)            # what was detected
        assert server.count(f"/v/{ids[0]}.mp4") <= 4           # one attempt and one check, not 8 full GETs
        assert server.count(f"/v/{ids[1]}.mp4") == server.count(f"/v/{ids[2]}.mp4") == 0
        out = read_manifest(root / "manifest.csv")
        assert list(out["fetch_status"]) == ["failed", "pending", "pending"]
        for y in ids:                                           # the mirror is fixed; rerun resumes
            server[f"/v/{y}.mp4"] = moov_at_end
        assert main(argv) == 0
    out = read_manifest(root / "manifest.csv")
    assert set(out["fetch_status"]) == {"ok"}
    # One convention for booleans: selected and selected_before_fetch are both written 1/0.
    lines = (root / "manifest.csv").read_text().splitlines()
    header = lines[0].split(",")
    for column in ("selected", "selected_before_fetch"):
        assert {line.split(",")[header.index(column)] for line in lines[1:]} == {"1"}


@pytest.mark.parametrize("sections", [True, False], ids=["section", "whole-file"])
def test_a_complete_download_that_does_not_decode_is_permanent(tmp_path, media, sections):
    bad, spare = ytid_for(1), ytid_for(2)
    noise = corrupt_file(tmp_path / "noise.mp4", size=200_000)
    manifest = manifest_rows([(bad, "A", True, 0), (spare, "A", False, 1)])
    root = tmp_path / "root"
    with LocalHTTPServer({f"/v/{bad}.mp4": noise, f"/v/{spare}.mp4": media["h264_aac"]}) as server:
        opts = options(root, server, tmp_path, retries=3, sections=sections)
        out, summary = fetch(manifest, opts)
        first = server.count(f"/v/{bad}.mp4")
        again, _ = fetch(manifest, opts)
        assert server.count(f"/v/{bad}.mp4") == first            # never retried, on this run or the next
    # One attempt (yt-dlp's probe, FFmpeg's reads) and the two checks; 3 retries would be 4 times the attempt.
    assert first <= 7
    for df in (out, again):
        assert (row(df, f"{bad}_0").fetch_status, row(df, f"{bad}_0").fetch_error) == ("unavailable",
                                                                                      "corrupt_source")
        assert row(df, f"{bad}_0").replaced_by == f"{spare}_0" and row(df, f"{spare}_0").fetch_status == "ok"
    assert [r["status"] for r in records(root, f"{bad}_0")] == ["unavailable"]
    assert summary.failures == {"corrupt_source": 1}


def test_resume_is_keyed_on_the_segment_and_format_not_the_clip_id(tmp_path, media):
    clip = ytid_for(1)
    path = f"/v/{clip}.mp4"
    root = tmp_path / "root"
    with LocalHTTPServer({path: media["h264_aac"]}) as server:
        first, _ = fetch(manifest_rows([(clip, "A", True, 0)]), options(root, server, tmp_path))
        n = server.count(path)
        same, _ = fetch(manifest_rows([(clip, "A", True, 0)]), options(root, server, tmp_path))
        assert server.count(path) == n                              # same segment and format: reused
        shorter, _ = fetch(manifest_rows([(clip, "A", True, 0)], end=8.0), options(root, server, tmp_path))
        assert server.count(path) > n                               # same clip ID, another end: fetched again
        n = server.count(path)
        lower, _ = fetch(manifest_rows([(clip, "A", True, 0)], end=8.0),
                         options(root, server, tmp_path, max_height=240))
        assert server.count(path) > n                               # another format option: fetched again
    assert first.iloc[0].media_duration == pytest.approx(10.0, abs=0.3)
    assert shorter.iloc[0].media_duration == pytest.approx(8.0, abs=0.3)
    assert probe(root / lower.iloc[0].media_path).duration == pytest.approx(8.0, abs=0.3)
    assert sorted(p.name for p in (root / "clips").iterdir()) == [f"{clip}_0.mp4"]


def test_outputs_of_a_clip_that_fails_on_a_rerun_are_removed(tmp_path, media):
    root = tmp_path / "root"
    manifest = media_manifest(root, media, ["h264_aac", "vp9_opus", "mpeg4_mp3"])
    trimmed, _ = trim(manifest, TrimOptions(root=root, progress=False))
    framed, _ = frames(trimmed, FrameOptions(root=root, progress=False, frames_per_clip=3))
    audio = {n: root / by_name(trimmed, n).audio_path for n in ("h264_aac", "vp9_opus", "mpeg4_mp3")}
    jpegs = {n: [root / p for p in by_name(framed, n).frame_paths.split(",")]
             + [root / by_name(framed, n).frame_full_path] for n in audio}
    assert all(p.is_file() for p in audio.values()) and all(p.is_file() for ps in jpegs.values() for p in ps)
    # h264_aac's file is now garbage (trim fails, so frames skips it); vp9_opus lost its video (trim still
    # works, frames fails); mpeg4_mp3 is untouched.
    corrupt_file(root / by_name(manifest, "h264_aac").media_path)
    (root / by_name(manifest, "vp9_opus").media_path).write_bytes(media["audio_only"].read_bytes())
    trimmed, counts = trim(manifest, TrimOptions(root=root, progress=False))
    assert (by_name(trimmed, "h264_aac").trim_status, by_name(trimmed, "h264_aac").audio_path) == ("error", "")
    assert not audio["h264_aac"].exists() and audio["vp9_opus"].is_file() and audio["mpeg4_mp3"].is_file()
    framed, counts = frames(trimmed, FrameOptions(root=root, progress=False, frames_per_clip=3))
    assert (by_name(framed, "vp9_opus").frames_status, by_name(framed, "vp9_opus").frame_path) == ("error", "")
    assert by_name(framed, "h264_aac").frame_path == ""
    for name in ("h264_aac", "vp9_opus"):
        assert not any(p.exists() for p in jpegs[name]), name
    assert all(p.is_file() for p in jpegs["mpeg4_mp3"]) and counts["reused"] == 1
    # Nothing else was removed: what is left is exactly the outputs of the clips whose frames are ok.
    named = {p for p in framed["frame_paths"].str.split(",").explode() if p}
    assert {p.relative_to(root).as_posix() for p in (root / "frames").iterdir()} == named
    assert {p.name for p in (root / "frames_full").iterdir()} == {p.rsplit("/", 1)[1] for p in named}
