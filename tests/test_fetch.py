"""fetch against a real local HTTP server (Range, faults) with real yt-dlp and FFmpeg.

Only YouTube itself is mocked (support/fake_youtube.py); direct-file routes go
through yt-dlp's own generic extractor.
"""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from builder.commands.main import main
from builder.demo.videos import grey_to_index_mod20, second_colour
from builder.errors import InputError
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.manifest.schema import read_manifest, write_manifest
from builder.media.ffmpeg import probe
from support.fake_youtube import player_error, player_json
from support.http_server import LocalHTTPServer, Response, Route
from support.media import manifest_rows, ytid_for

BOT_PAGE = ("<html><title>Sorry...</title><body>Sign in to confirm you’re not a bot. Our systems have detected "
            "unusual traffic from your computer network.</body></html>").encode()


def options(root, server, tmp_path, **kw):
    base = dict(root=root, url_template=server.base_url + "/v/{ytid}.mp4", retries=2, backoff=0.01,
                timeout=3.0, progress=False, rate_state_dir=tmp_path / "rate", cache_dir=tmp_path / "ytdlp-cache")
    base.update(kw)
    return FetchOptions(**base)


class Scenario:
    """Clips named by role; each gets a YTID, a route and a manifest row."""

    def __init__(self):
        self.routes, self.entries, self.ids = {}, [], {}

    def add(self, role, route, cls="A", selected=True):
        ytid = ytid_for(len(self.ids))
        self.ids[role] = ytid
        self.routes[f"/v/{ytid}.mp4"] = route
        rank = sum(1 for e in self.entries if e[1] == cls)
        self.entries.append((ytid, cls, selected, rank))
        return ytid

    def path(self, role):
        return f"/v/{self.ids[role]}.mp4"

    def clip(self, role):
        return f"{self.ids[role]}_0"

    def manifest(self, **kw):
        return manifest_rows(self.entries, **kw)


def row(df, clip_id):
    return df[df["clip_id"] == clip_id].iloc[0]


def test_statuses_retries_replacements_and_resume(tmp_path, media):
    def fail_twice_then_ok(request):
        return Response(500, b"busy") if request.index <= 2 else media["h264_aac"]

    s = Scenario()
    s.add("ok", media["h264_aac"])
    s.add("gone", Response(404, b"no such video"))
    s.add("flaky", fail_twice_then_ok)
    s.add("webm", media["vp9_opus"])
    s.add("short", media["short4"])                       # the source ends at 4 s: accepted as 4 s
    s.add("reserve1", media["mpeg4_mp3"], selected=False)
    s.add("reserve2", media["portrait"], selected=False)  # not needed: never requested
    s.add("no_audio", media["video_only"], cls="B")
    s.add("truncated", Route(media["h264_aac"], truncate_after=150_000), cls="B")
    s.add("no_video", media["audio_only"], cls="B", selected=False)
    s.add("reserveB", media["silent"], cls="B", selected=False)
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        out, summary = fetch(s.manifest(), options(root, server, tmp_path))
        counts_after_first = {p: server.count(p) for p in s.routes}

        status = {role: row(out, s.clip(role)).fetch_status for role in s.ids}
        assert status == {"ok": "ok", "gone": "unavailable", "flaky": "ok", "webm": "ok", "short": "ok",
                          "reserve1": "ok", "reserve2": "unused", "no_audio": "unavailable", "truncated": "failed",
                          "no_video": "unavailable", "reserveB": "ok"}
        errors = {role: row(out, s.clip(role)).fetch_error for role in ("gone", "no_audio", "truncated", "no_video")}
        assert errors == {"gone": "not_found", "no_audio": "no_audio", "truncated": "incomplete",
                          "no_video": "no_video"}
        # Fill to quota: class A lost one clip and took the first reserve clip; class B lost two and
        # has only one usable reserve clip left.
        assert row(out, s.clip("gone")).replaced_by == s.clip("reserve1")
        assert row(out, s.clip("reserve1")).replaces == s.clip("gone")
        assert row(out, s.clip("no_audio")).replaced_by == s.clip("reserveB")
        selected = set(out.loc[out["selected"], "clip_id"])
        assert selected == {s.clip(r) for r in ("ok", "flaky", "webm", "short", "reserve1", "reserveB")}
        assert summary.per_class["A"]["ok"] == 5 and summary.per_class["B"] == {
            "target": 2, "ok": 1, "pending": 0, "unavailable": 2, "failed": 1, "replaced": 1}
        # Outputs: real media with both streams and the requested duration.
        for role, seconds in (("ok", 10.0), ("webm", 10.0), ("short", 4.0), ("reserve1", 10.0)):
            info = probe(root / row(out, s.clip(role)).media_path)
            assert info.has_audio and info.has_video
            assert info.duration == pytest.approx(seconds, abs=0.5)
            assert row(out, s.clip(role)).media_duration == pytest.approx(info.duration)
        assert sorted(p.name for p in (root / "clips").iterdir()) == sorted(
            f"{s.clip(r)}.mp4" for r in ("ok", "flaky", "webm", "short", "reserve1", "reserveB"))
        assert not any((root / ".tmp").iterdir()) if (root / ".tmp").exists() else True
        assert counts_after_first[s.path("reserve2")] == 0
        assert counts_after_first[s.path("gone")] == 1       # permanent: not retried
        # The log has one record per attempt: two 5xx retries, then ok.
        log = [r for r in map(__import__("json").loads, (root / "fetch_status.jsonl").read_text().splitlines())
               if r["clip_id"] == s.clip("flaky")]
        assert [(r["status"], r["error_class"]) for r in log] == [("retry", "http_5xx"), ("retry", "http_5xx"),
                                                                  ("ok", "")]
        assert log[-1]["bytes"] > 0 and log[-1]["seconds"] > 0

        # Rerun: nothing finished is requested again; only the transient failure is retried.
        again, _ = fetch(s.manifest(), options(root, server, tmp_path))
        for role in s.ids:
            if role != "truncated":
                assert server.count(s.path(role)) == counts_after_first[s.path(role)], role
        assert server.count(s.path("truncated")) > counts_after_first[s.path("truncated")]
        cols = ["clip_id", "selected", "fetch_status", "fetch_error", "media_path", "replaces", "replaced_by"]
        assert again[cols].equals(out[cols])


def test_exact_cut_of_a_section(tmp_path, media):
    """Start 3.3 s lies between keyframes (every 2 s): the first frame must still be source frame 33."""
    s = Scenario()
    s.add("clip", media["h264_aac"])
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        out, _ = fetch(s.manifest(start=3.3, end=8.3), options(root, server, tmp_path))
        ranges = server.range_headers(s.path("clip"))
    path = root / out.iloc[0].media_path
    assert probe(path).duration == pytest.approx(5.0, abs=0.1)
    assert any(r and r.startswith("bytes=") for r in ranges)      # FFmpeg read the section via Range
    capture = cv2.VideoCapture(str(path))
    for k, source_index in ((0, 33), (12, 45)):
        capture.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, frame = capture.read()
        assert ok
        left = frame[10:-10, 10:60, ::-1].reshape(-1, 3).mean(axis=0)
        assert np.abs(left - second_colour(source_index // 10)).max() < 15
        assert grey_to_index_mod20(frame[10:-10, 100:150].mean()) == source_index % 20


def test_height_cap_merge_and_youtube_errors(tmp_path, media):
    """Through a YouTube-like extractor: <= cap video + best audio merged; YouTube's error wording classified."""
    routes = {f"/r/{h}.mp4": media[f"video_{h}p"] for h in (144, 240, 360)}
    routes["/r/audio.m4a"] = media["audio_track"]
    with LocalHTTPServer(routes) as server:
        ok_id, private_id, gone_id = ytid_for(1), ytid_for(2), ytid_for(3)
        server[f"/player/{ok_id}.json"] = player_json(server.base_url, {h: f"/r/{h}.mp4" for h in (144, 240, 360)},
                                                      "/r/audio.m4a", 10.0)
        server[f"/player/{private_id}.json"] = player_error("Private video. Sign in if you've been granted access")
        server[f"/player/{gone_id}.json"] = player_error(
            "Video unavailable. This video has been removed by the uploader")
        manifest = manifest_rows([(ok_id, "A", True, 0), (private_id, "A", True, 1), (gone_id, "A", True, 2)])
        root = tmp_path / "root"
        opts = options(root, server, tmp_path, url_template=server.base_url + "/watch/{ytid}", max_height=240,
                       extractor="support.fake_youtube:FakeYouTubeIE")
        out, _ = fetch(manifest, opts)
        assert server.count("/r/240.mp4") > 0 and server.count("/r/audio.m4a") > 0
        assert server.count("/r/360.mp4") == 0 and server.count("/r/144.mp4") == 0
    info = probe(root / row(out, f"{ok_id}_0").media_path)
    assert info.video.height == 240 and info.has_audio
    assert info.duration == pytest.approx(10.0, abs=0.5)
    assert row(out, f"{private_id}_0").fetch_error == "private"
    assert row(out, f"{gone_id}_0").fetch_error == "removed"
    assert set(out["fetch_status"]) == {"ok", "unavailable"}


def test_bot_check_halts_the_run_and_resume_continues(tmp_path, media, capsys):
    s = Scenario()
    s.add("first", media["h264_aac"])
    s.add("bot", Response(403, BOT_PAGE, {"Content-Type": "text/html; charset=utf-8"}))
    s.add("later1", media["h264_aac"])
    s.add("later2", media["h264_aac"], cls="B")
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        manifest_path = tmp_path / "m.csv"
        write_manifest(s.manifest(), manifest_path)
        argv = ["fetch", str(manifest_path), "--out", str(root), "--url-template", server.base_url + "/v/{ytid}.mp4",
                "--workers", "1", "--backoff", "0.01", "--no-progress"]
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert "HALTED (bot_check)" in err and "--cookies" in err and "--proxy" in err
        assert server.count(s.path("later1")) == 0 and server.count(s.path("later2")) == 0
        assert server.count(s.path("bot")) == 2        # the request, and one read of its error page
        out = read_manifest(root / "manifest.csv")
        assert row(out, s.clip("first")).fetch_status == "ok"
        assert row(out, s.clip("bot")).fetch_status == "failed"
        assert row(out, s.clip("later1")).fetch_status == "pending"
        # The user fixes the cause (cookies, proxy...) and reruns: the run continues where it stopped.
        server[s.path("bot")] = media["h264_aac"]
        first_requests = server.count(s.path("first"))
        assert main(argv) == 0
        out = read_manifest(root / "manifest.csv")
        assert set(out["fetch_status"]) == {"ok"}
        assert server.count(s.path("first")) == first_requests


def test_429_burst_halts(tmp_path, media):
    s = Scenario()
    for i in range(5):
        s.add(f"c{i}", Response(429, b"slow down", {"Retry-After": "0"}))
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        out, summary = fetch(s.manifest(), options(root, server, tmp_path, retries=5, burst_429=3))
        total = sum(server.count(p) for p in s.routes)
    assert summary.halted["error_class"] == "rate_limited"
    assert "lower the rate" in summary.halted["advice"]
    assert total == 3                                    # stopped at the third 429
    assert (out["fetch_status"] == "pending").sum() == 4


def test_stalls_time_out_and_are_transient(tmp_path, media):
    s = Scenario()
    s.add("stall_page", Route(media["h264_aac"], delay_s=4.0))
    s.add("stall_media", lambda req: Route(media["h264_aac"], delay_s=4.0) if req.range else media["h264_aac"])
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        started = time.time()
        out, _ = fetch(s.manifest(), options(root, server, tmp_path, retries=0, timeout=1.0))
        elapsed = time.time() - started
    assert elapsed < 12
    assert row(out, s.clip("stall_page")).fetch_error == "timeout"
    assert row(out, s.clip("stall_media")).fetch_error == "download_failed"   # FFmpeg's -rw_timeout fired
    assert set(out["fetch_status"]) == {"failed"}


def test_malformed_ids_refused_before_any_request(tmp_path, media):
    s = Scenario()
    s.add("fine", media["h264_aac"])
    with LocalHTTPServer(s.routes) as server:
        for bad in ("../../x", "-o/etc/x", "AAAAAAAAAAAA"):
            manifest = s.manifest()
            manifest.loc[0, "ytid"] = bad
            manifest.loc[0, "clip_id"] = f"{bad}_0"
            root = tmp_path / "root"
            with pytest.raises(InputError) as err:
                fetch(manifest, options(root, server, tmp_path))
            assert err.value.field == "ytid"
            assert not root.exists()                     # not even the media root was created
        assert server.requests == []


def test_cookies_and_proxy_reach_the_server(tmp_path, media):
    """Cookies go with yt-dlp's extraction request (where YouTube checks the session) and the user's
    cookie file is never rewritten; with a proxy, requests for an unresolvable host arrive at the proxy
    (our server). FFmpeg 5.1 matches cookie domains against "host:port", so on this test server's
    non-default port it drops them; on YouTube's port 443 they match."""
    s = Scenario()
    s.add("clip", media["h264_aac"])
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\tsecret-session\n")
    before = cookies.read_bytes()
    root = tmp_path / "root"
    with LocalHTTPServer(s.routes) as server:
        out, _ = fetch(s.manifest(), options(root, server, tmp_path, cookies=cookies))
        assert out.iloc[0].fetch_status == "ok"
        requests = server.requests_for(s.path("clip"))
        assert len(requests) >= 2 and "SID=secret-session" in requests[0].headers.get("cookie", "")
        assert cookies.read_bytes() == before

        server.clear_log()
        proxied = tmp_path / "proxied"
        out, _ = fetch(s.manifest(), options(proxied, server, tmp_path, proxy=server.base_url,
                                             url_template="http://mirror.invalid/v/{ytid}.mp4"))
        assert out.iloc[0].fetch_status == "ok"
        assert server.count(s.path("clip")) >= 2
        assert all(r.headers.get("host") == "mirror.invalid" for r in server.requests_for(s.path("clip")))


def test_youtube_bot_check_wording_halts(tmp_path, media):
    """YouTube's own bot-check message (as its extractor raises it) stops the run before the next clip."""
    with LocalHTTPServer({}) as server:
        first, second = ytid_for(1), ytid_for(2)
        server[f"/player/{first}.json"] = player_error(
            "Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for the authentication.")
        server[f"/player/{second}.json"] = player_error("Video unavailable")
        manifest = manifest_rows([(first, "A", True, 0), (second, "A", True, 1)])
        opts = options(tmp_path / "root", server, tmp_path, url_template=server.base_url + "/watch/{ytid}",
                       extractor="support.fake_youtube:FakeYouTubeIE")
        out, summary = fetch(manifest, opts)
        assert server.count(f"/player/{second}.json") == 0
    assert summary.halted["error_class"] == "bot_check" and "--cookies" in summary.halted["advice"]
    assert list(out["fetch_status"]) == ["failed", "pending"]
