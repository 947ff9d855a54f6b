"""llinet-build doctor: one line per item, exit 0 offline with the setup's tools, non-zero with a clear line
when something a real fetch needs is missing (FFmpeg off PATH, no JavaScript runtime, bad cookies, no room)."""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from builder.commands.main import main
from builder.doctor.files import check_cookies, parse_cookies
from builder.doctor.report import FAIL, OK, WARN
from builder.doctor.tools import check_ytdlp, release_date
from builder.manifest.schema import write_manifest
from support.fake_youtube import player_error, player_json
from support.http_server import LocalHTTPServer
from support.media import manifest_rows, ytid_for

REPO = Path(__file__).resolve().parents[1]
REQUIRED = ("ffmpeg", "ffprobe", "encoders", "yt-dlp", "js runtime", "ejs", "disk")


def verdicts(output: str) -> dict[str, tuple[str, str]]:
    """item -> (verdict, detail) from the report's lines."""
    found = {}
    for line in output.splitlines():
        verdict, _, rest = line.partition("  ")
        if verdict.strip() in ("ok", "warn", "FAIL", "skip"):
            item, _, detail = rest.strip().partition("  ")
            found[item.strip()] = (verdict.strip(), detail.strip())
    return found


def doctor(capsys, *argv: str) -> tuple[int, dict[str, tuple[str, str]], str]:
    code = main(["doctor", *argv])
    out = capsys.readouterr().out
    return code, verdicts(out), out


def test_offline_with_the_setup_every_required_item_is_ok(tmp_path, capsys):
    code, items, out = doctor(capsys, "--root", str(tmp_path / "media"))
    assert code == 0, out
    for item in REQUIRED:
        assert items[item][0] in ("ok", "warn"), (item, items[item])      # yt-dlp may be old: a warning
    assert items["js runtime"][0] == "ok" and items["js runtime"][1].startswith("deno ")
    assert items["ejs"] == ("ok", items["ejs"][1]) and "yt-dlp-ejs" in items["ejs"][1]
    assert "libx264" in items["encoders"][1] and "aac" in items["encoders"][1]
    assert "4800 clips" in items["disk"][1]                               # the committed selection
    assert items["online"][0] == "skip" and items["cookies"][0] == "skip" and items["ray"][0] == "skip"
    assert out.rstrip().endswith("warning(s))") and "every required item is ok" in out


def test_ffmpeg_missing_from_path_fails_with_a_clear_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LLINET_FFMPEG", "LLINET_FFPROBE")}
    env.update(PATH=str(empty), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "builder.commands.main", "doctor", "--root", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    items = verdicts(done.stdout)
    assert items["ffmpeg"][0] == FAIL and "not found on PATH" in items["ffmpeg"][1]
    assert "apt install ffmpeg" in items["ffmpeg"][1]
    assert items["ffprobe"][0] == FAIL and items["encoders"][0] == FAIL
    assert items["js runtime"][0] == OK                     # the venv's Deno is found without PATH
    assert "required item(s) missing or broken: ffmpeg, ffprobe, encoders" in done.stdout


def test_js_runtime_missing_fails_with_a_clear_line(tmp_path, capsys):
    code, items, out = doctor(capsys, "--root", str(tmp_path), "--js-runtime", f"deno:{tmp_path}")
    assert code == 1
    verdict, detail = items["js runtime"]
    assert verdict == FAIL and f"no deno found ({tmp_path / 'deno'})" in detail
    assert "pip install deno" in detail and "--js-runtime" in detail
    assert "missing or broken: js runtime" in out
    code, items, _ = doctor(capsys, "--root", str(tmp_path), "--js-runtime", "node:/nonexistent/node")
    assert code == 1 and items["js runtime"][0] == FAIL and "no such file" in items["js runtime"][1]


def test_ytdlp_age_is_a_warning_not_a_failure():
    import yt_dlp.version

    released = release_date(yt_dlp.version.__version__)
    assert released is not None and release_date("2026.10.26.233045") == dt.date(2026, 10, 26)
    fresh = check_ytdlp(today=released + dt.timedelta(days=10))
    assert fresh.verdict == OK and "10 days old" in fresh.detail
    old = check_ytdlp(today=released + dt.timedelta(days=90))
    assert old.verdict == WARN and "90 days old" in old.detail and 'pip install -U "yt-dlp[default]"' in old.detail


def write_cookies(path: Path, rows: list[tuple[str, str, float]], header: str = "# Netscape HTTP Cookie File") -> Path:
    lines = [header, ""] + [f"{domain}\tTRUE\t/\tTRUE\t{int(expires)}\t{name}\tvalue" for domain, name, expires in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cookies_readable_netscape_and_not_expired(tmp_path, capsys):
    now = time.time()
    good = write_cookies(tmp_path / "good.txt", [(".youtube.com", "SID", now + 86400 * 30),
                                                 (".youtube.com", "PREF", 0), (".example.org", "x", now - 10)])
    assert [c.name for c in parse_cookies(good)] == ["SID", "PREF", "x"]
    check = check_cookies(good)
    assert check.verdict == OK and "2 youtube.com cookie(s)" in check.detail

    expired = write_cookies(tmp_path / "expired.txt", [(".youtube.com", "SID", now - 86400),
                                                       ("#HttpOnly_.youtube.com", "HSID", now - 3600)])
    check = check_cookies(expired)
    assert check.verdict == FAIL and "every youtube.com cookie expired" in check.detail

    assert check_cookies(write_cookies(tmp_path / "other.txt", [(".example.org", "x", 0)])).verdict == WARN
    (tmp_path / "cookies.json").write_text(json.dumps([{"domain": ".youtube.com", "name": "SID"}]))
    assert "JSON" in check_cookies(tmp_path / "cookies.json").detail
    no_header = write_cookies(tmp_path / "plain.txt", [(".youtube.com", "SID", 0)], header="")
    assert check_cookies(no_header).detail.endswith("line 1: expected '# Netscape HTTP Cookie File' "
                                                    "(a Netscape-format cookies.txt)")
    broken = tmp_path / "broken.txt"
    broken.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tv\n.youtube.com\tSID\n")
    assert "line 3: 2 tab-separated fields, expected 7" in check_cookies(broken).detail
    assert check_cookies(tmp_path / "missing.txt").verdict == FAIL

    code, items, _ = doctor(capsys, "--root", str(tmp_path), "--cookies", str(expired))
    assert code == 1 and items["cookies"][0] == FAIL


def test_disk_space_against_what_the_manifest_needs(tmp_path, capsys):
    """The size per clip is measured on the clips already there: a sparse 2 TB "clip" makes the
    manifest's 50 remaining clips need far more than any disk has (a sparse file takes no space)."""
    entries = [(ytid_for(i), "A", True, i) for i in range(51)]
    manifest = tmp_path / "m.csv"
    write_manifest(manifest_rows(entries), manifest)
    root = tmp_path / "media"
    code, items, _ = doctor(capsys, "--root", str(root), "--manifest", str(manifest))
    assert code == 0 and "51 clips of" in items["disk"][1] and items["disk"][0] == OK
    (root / "clips").mkdir(parents=True)
    with open(root / "clips" / f"{ytid_for(0)}_0.mp4", "wb") as handle:
        handle.truncate(2 * 10**12)
    code, items, out = doctor(capsys, "--root", str(root), "--manifest", str(manifest))
    assert code == 1, out
    verdict, detail = items["disk"]
    assert verdict == FAIL and "50 clips of" in detail and "(1 clips there)" in detail
    assert "free some space or choose another --root" in detail


def test_ray_is_checked_when_asked(tmp_path, capsys):
    code, items, _ = doctor(capsys, "--root", str(tmp_path), "--distributor", "ray")
    assert code == 0 and items["ray"][0] == OK and items["ray"][1].startswith("ray ")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_online_probe_extracts_formats_and_offline_is_not_a_failure(tmp_path, capsys, media):
    gone, ok = ytid_for(1), ytid_for(2)
    manifest = tmp_path / "m.csv"
    write_manifest(manifest_rows([(gone, "A", True, 0), (ok, "A", True, 1)]), manifest)
    fake = ["--extractor", "support.fake_youtube:FakeYouTubeIE", "--cache-dir", str(tmp_path / "cache"),
            "--root", str(tmp_path), "--manifest", str(manifest), "--online", "--height", "240"]
    with LocalHTTPServer({}) as server:
        server[f"/player/{gone}.json"] = player_error("Video unavailable. This video has been removed by the uploader")
        server[f"/player/{ok}.json"] = player_json(server.base_url, {144: "/r/144.mp4", 360: "/r/360.mp4"},
                                                   "/r/audio.m4a", 10.0, player_js="/js/p.js", expected="42")
        server["/js/p.js"] = b"console.log(6 * 7)"
        template = ["--url-template", server.base_url + "/watch/{ytid}"]
        code, items, out = doctor(capsys, *fake, *template)
        assert code == 0, out
        assert items["online"] == (OK, f"{ok}: 3 formats, best video 144p (cap 240p) + audio")
        assert server.count("/r/144.mp4") == 0                      # formats listed, nothing downloaded
        # Without a runtime the probe sees yt-dlp's warning: a failure, as the fetch would stop on it.
        code, items, _ = doctor(capsys, *fake, *template, "--js-runtime", f"deno:{tmp_path}")
        assert code == 1 and items["online"][0] == FAIL
        assert "No supported JavaScript runtime could be found" in items["online"][1]
    # Nothing listens there: "cannot reach", a warning; the exit status stays 0.
    closed = ["--url-template", f"http://127.0.0.1:{free_port()}/watch/{{ytid}}"]
    code, items, out = doctor(capsys, *fake, *closed, "--timeout", "3")
    assert code == 0, out
    assert items["online"][0] == WARN and items["online"][1].startswith("cannot reach 127.0.0.1:")
