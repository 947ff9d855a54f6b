"""fetch through a YouTube-like extractor that needs a JavaScript runtime (support/fake_youtube.py).

The runtime is really run (the venv's Deno), yt-dlp's cache really persists the solved challenge, and
yt-dlp's real warning wording for a missing runtime or a failed challenge stops the run early with
advice (exit 3), losing nothing: the manifest and the status log stay consistent and a rerun resumes.
"""
from __future__ import annotations

import json

from builder.commands.main import main
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.manifest.schema import read_manifest, write_manifest
from support.fake_youtube import CACHE_SECTION, player_error, player_json
from support.http_server import LocalHTTPServer
from support.media import manifest_rows, ytid_for

PLAYER_JS = "/s/player/p1/base.js"
CHALLENGE = 'console.log(["c", "a", "b"].sort().join("-"))'     # the player's "challenge": a-b-c
RENDITIONS = (144, 240)


def serve(server, media, ytids, *, expected="a-b-c", player_js=PLAYER_JS, formats=True, warnings=()):
    server[PLAYER_JS] = CHALLENGE.encode()
    for h in RENDITIONS:
        server[f"/r/{h}.mp4"] = media[f"video_{h}p"]
    server["/r/audio.m4a"] = media["audio_track"]
    for ytid in ytids:
        renditions = {h: f"/r/{h}.mp4" for h in RENDITIONS} if formats else {}
        body = json.loads(player_json(server.base_url, renditions, "/r/audio.m4a", 10.0, player_js=player_js,
                                      expected=expected, warnings=tuple(warnings)))
        if not formats:
            body["formats"] = []
        server[f"/player/{ytid}.json"] = json.dumps(body).encode()


def opts(root, server, tmp_path, **kw):
    base = dict(root=root, url_template=server.base_url + "/watch/{ytid}",
                extractor="support.fake_youtube:FakeYouTubeIE",
                retries=1, backoff=0.01, timeout=5.0, max_height=240, progress=False,
                rate_state_dir=tmp_path / "rate", cache_dir=tmp_path / "ytdlp-cache")
    base.update(kw)
    return FetchOptions(**base)


def log_records(root):
    return [json.loads(line) for line in (root / "fetch_status.jsonl").read_text().splitlines()]


def cli(manifest_path, root, server, tmp_path, *extra):
    return ["fetch", "--manifest", str(manifest_path), "--root", str(root),
            "--url-template", server.base_url + "/watch/{ytid}", "--extractor", "support.fake_youtube:FakeYouTubeIE",
            "--workers", "1", "--backoff", "0.01", "--height", "240", "--no-progress",
            "--cache-dir", str(tmp_path / "ytdlp-cache"), *extra]


def test_the_venv_deno_solves_the_challenge_once_and_the_cache_persists(tmp_path, media):
    ytids = [ytid_for(i) for i in range(3)]
    manifest = manifest_rows([(y, "A", True, i) for i, y in enumerate(ytids)])
    with LocalHTTPServer({}) as server:
        serve(server, media, ytids)
        out, summary = fetch(manifest, opts(tmp_path / "root", server, tmp_path))
        assert set(out["fetch_status"]) == {"ok"} and summary.halted is None and summary.warnings == {}
        assert server.count(PLAYER_JS) == 1                   # one download and solve for three clips
        cached = list((tmp_path / "ytdlp-cache" / CACHE_SECTION).iterdir())
        assert len(cached) == 1 and "a-b-c" in cached[0].read_text()
        # Another run, two worker processes: both read the same cache; the player is not fetched again.
        again, _ = fetch(manifest, opts(tmp_path / "root2", server, tmp_path, workers=2, shard_size=1))
        assert set(again["fetch_status"]) == {"ok"} and server.count(PLAYER_JS) == 1
    assert all("warnings" not in r for r in log_records(tmp_path / "root"))


def test_no_js_runtime_stops_the_run_with_advice_and_a_rerun_resumes(tmp_path, media, capsys):
    """yt-dlp finds no runtime (--js-runtime names a folder without one): its own warning stops the run
    at the first clip, exit 3; nothing is marked unavailable; with the default runtime the rerun finishes."""
    ytids = [ytid_for(i) for i in range(4)]
    manifest = manifest_rows([(ytids[0], "A", True, 0), (ytids[1], "A", True, 1), (ytids[2], "B", True, 0),
                              (ytids[3], "B", False, 1)])
    manifest_path = tmp_path / "m.csv"
    write_manifest(manifest, manifest_path)
    empty = tmp_path / "no-runtime-here"
    empty.mkdir()
    root = tmp_path / "root"
    with LocalHTTPServer({}) as server:
        serve(server, media, ytids)
        assert main(cli(manifest_path, root, server, tmp_path, "--js-runtime", f"deno:{empty}")) == 3
        err = capsys.readouterr().err
        assert "HALTED (js_runtime)" in err and "No supported JavaScript runtime could be found" in err
        assert "--js-runtime" in err and "llinet-build doctor" in err
        requested = [y for y in ytids if server.count(f"/player/{y}.json")]
        assert requested == [ytids[0]]                         # stopped at the first clip
        records = log_records(root)
        assert [(r["clip_id"], r["status"], r["error_class"]) for r in records] == \
            [(f"{ytids[0]}_0", "halted", "no_format")]
        assert any("No supported JavaScript runtime" in w for w in records[0]["warnings"])
        out = read_manifest(root / "manifest.csv")
        assert list(out["fetch_status"]) == ["failed", "pending", "pending", "unused"]
        assert "unavailable" not in set(out["fetch_status"]) and (out["replaced_by"] == "").all()

        assert main(cli(manifest_path, root, server, tmp_path)) == 0     # the venv's Deno
        out = read_manifest(root / "manifest.csv")
        assert list(out["fetch_status"]) == ["ok", "ok", "ok", "unused"]
        assert list(out["selected"]) == [True, True, True, False]       # the initial selection, no swaps
        assert server.count(f"/player/{ytids[3]}.json") == 0


def test_failed_challenge_stops_the_run_and_nothing_is_lost(tmp_path, media, capsys):
    """The player's challenge no longer gives what the formats need (YouTube changed its player):
    yt-dlp's "n challenge solving failed" warning stops the run; once solvable again, the rerun resumes."""
    ytids = [ytid_for(i) for i in range(3)]
    manifest_path = tmp_path / "m.csv"
    write_manifest(manifest_rows([(y, "A", True, i) for i, y in enumerate(ytids)]), manifest_path)
    root = tmp_path / "root"
    with LocalHTTPServer({}) as server:
        serve(server, media, ytids, expected="a-b-c-d")
        assert main(cli(manifest_path, root, server, tmp_path)) == 3
        err = capsys.readouterr().err
        assert "HALTED (challenge_failed)" in err and "n challenge solving failed" in err
        assert 'pip install -U "yt-dlp[default]"' in err
        assert [y for y in ytids if server.count(f"/player/{y}.json")] == [ytids[0]]
        assert [r["status"] for r in log_records(root)] == ["halted"]
        assert list(read_manifest(root / "manifest.csv")["fetch_status"]) == ["failed", "pending", "pending"]

        serve(server, media, ytids)
        assert main(cli(manifest_path, root, server, tmp_path)) == 0
        assert set(read_manifest(root / "manifest.csv")["fetch_status"]) == {"ok"}


def test_clips_without_any_format_before_a_success_stop_the_run(tmp_path, media):
    """Three clips in a row with no formats at all and no success: extraction is broken, not the videos.
    They are kept for the next run instead of being marked unavailable and replaced from the reserve."""
    ytids = [ytid_for(i) for i in range(5)]
    manifest = manifest_rows([(y, "A", i < 3, i) for i, y in enumerate(ytids)])
    root = tmp_path / "root"
    with LocalHTTPServer({}) as server:
        serve(server, media, ytids, player_js=None, formats=False)
        out, summary = fetch(manifest, opts(root, server, tmp_path))
        assert summary.halted["error_class"] == "no_formats"
        assert "player_client" in summary.halted["advice"]
        assert [r["status"] for r in log_records(root)] == ["failed", "failed", "halted"]
        assert list(out["fetch_status"]) == ["failed", "failed", "failed", "pending", "pending"]
        assert server.count(f"/player/{ytids[3]}.json") == 0       # the reserve was not touched

        serve(server, media, ytids, player_js=None)
        out, summary = fetch(manifest, opts(root, server, tmp_path))
        assert summary.halted is None
        assert list(out["fetch_status"]) == ["ok", "ok", "ok", "unused", "unused"]


def test_no_formats_after_a_success_is_the_videos_own(tmp_path, media):
    ytids = [ytid_for(i) for i in range(3)]
    manifest = manifest_rows([(ytids[0], "A", True, 0), (ytids[1], "A", True, 1), (ytids[2], "A", False, 2)])
    with LocalHTTPServer({}) as server:
        serve(server, media, [ytids[0], ytids[2]], player_js=None)
        serve(server, media, [ytids[1]], player_js=None, formats=False)
        out, summary = fetch(manifest, opts(tmp_path / "root", server, tmp_path))
    assert summary.halted is None
    assert list(out["fetch_status"]) == ["ok", "unavailable", "ok"]
    assert out["fetch_error"].iloc[1] == "no_format" and out["replaced_by"].iloc[1] == f"{ytids[2]}_0"


def test_warnings_are_recorded_and_counted_and_extractor_args_reach_ytdlp(tmp_path, media, capsys):
    ytids = [ytid_for(i) for i in range(3)]
    manifest_path = tmp_path / "m.csv"
    write_manifest(manifest_rows([(y, "A", True, i) for i, y in enumerate(ytids)]), manifest_path)
    sabr = ("Some web client https formats have been skipped as they are missing a url. YouTube is forcing "
            "SABR streaming for this client.")
    root = tmp_path / "root"
    with LocalHTTPServer({}) as server:
        serve(server, media, ytids[:2], warnings=[sabr])
        serve(server, media, ytids[2:])
        argv = cli(manifest_path, root, server, tmp_path, "--extractor-args", "youtube:player_client=mweb,web")
        assert main(argv) == 0
        assert {r.query for y in ytids for r in server.requests_for(f"/player/{y}.json")} == {"client=mweb"}
    printed = capsys.readouterr().out
    assert "clips with yt-dlp warnings: other 2" in printed and "SABR streaming" in printed
    warned = {r["clip_id"]: r.get("warnings", []) for r in log_records(root) if r["status"] == "ok"}
    assert [len(warned[f"{y}_0"]) for y in ytids] == [1, 1, 0]
    assert warned[f"{ytids[0]}_0"][0].endswith(sabr) and f"{ytids[0]}:" in warned[f"{ytids[0]}_0"][0]


def test_unavailable_wording_is_still_final_with_a_runtime(tmp_path, media):
    """The JS runtime changes nothing for YouTube's own error messages: a removed video stays unavailable."""
    ok, gone = ytid_for(1), ytid_for(2)
    with LocalHTTPServer({}) as server:
        serve(server, media, [ok])
        server[f"/player/{gone}.json"] = player_error("Video unavailable. This video has been removed by the uploader")
        out, summary = fetch(manifest_rows([(ok, "A", True, 0), (gone, "A", True, 1)]),
                             opts(tmp_path / "root", server, tmp_path))
    assert summary.halted is None and list(out["fetch_status"]) == ["ok", "unavailable"]
