"""A full disk, a read-only or vanished media root, FFmpeg gone mid-run: fetch and trim stop at once with
one line and a non-zero exit, record nothing against the clips, and a rerun after the fix resumes.

Each case runs on a real tmpfs of a few hundred KB where the machine allows mounting one (as root), and
by injecting ENOSPC at the write everywhere.
"""
from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from builder.commands.main import main
from builder.io import status_log
from builder.manifest.schema import read_manifest, write_manifest
from builder.media import trim as trim_module
from support.http_server import LocalHTTPServer
from support.media import manifest_rows, media_manifest, ytid_for
from support.tree import small_filesystem, tree_digest

MB = 1 << 20


def log_records(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def error_lines(capsys):
    """The command's own lines on stderr (the test server's threads may add noise about closed sockets)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("llinet-build")]


def fetch_setup(tmp_path, media, root, n=8):
    ids = [ytid_for(i) for i in range(n)]
    manifest = tmp_path / "m.csv"
    write_manifest(manifest_rows([(y, "A", True, i) for i, y in enumerate(ids)]), manifest)
    routes = {f"/v/{y}.mp4": media["h264_aac"] for y in ids}

    def argv(server):
        return ["fetch", "--manifest", str(manifest), "--root", str(root), "--url-template",
                server.base_url + "/v/{ytid}.mp4", "--workers", "1", "--backoff", "0.01", "--timeout", "5",
                "--no-progress"]
    return ids, routes, argv


def assert_resumes(server, argv, routes, done_before, root):
    """The rerun ends with every clip ok and downloads none of the clips finished before."""
    before = {path: server.count(path) for path in routes}
    assert main(argv) == 0
    assert set(read_manifest(root / "manifest.csv")["fetch_status"]) == {"ok"}
    for clip_id in done_before:
        path = f"/v/{clip_id.rsplit('_', 1)[0]}.mp4"
        assert server.count(path) == before[path], clip_id


def test_fetch_on_a_full_small_filesystem(tmp_path, media, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with small_filesystem(tmp_path / "fs", 700 * 1024) as fs:
        if fs is None:
            pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC tests cover this without it")
        root = fs.path / "root"
        ids, routes, argv = fetch_setup(tmp_path, media, root)
        with LocalHTTPServer(routes) as server:
            assert main(argv(server)) == 2
            lines = error_lines(capsys)
            assert len(lines) == 1 and "No space left on device" in lines[0], lines
            assert "rerun the same command" in lines[0]
            records = log_records(root / "fetch_status.jsonl")
            assert records and {r["status"] for r in records} == {"ok"}      # nothing failed, nothing retried
            assert len(records) < len(ids) and not (root / "manifest.csv").exists()
            fs.resize(40 * MB, read_only=True)
            assert main(argv(server)) == 2
            lines = error_lines(capsys)
            assert len(lines) == 1 and "Read-only file system" in lines[0], lines
            fs.resize(40 * MB)                                                  # space freed
            assert_resumes(server, argv(server), routes, [r["clip_id"] for r in records], root)


def test_fetch_enospc_injected_at_the_record_write(tmp_path, media, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "root"
    ids, routes, argv = fetch_setup(tmp_path, media, root, n=4)
    real_write, writes = status_log._write_all, []

    def full_disk_on_the_third_record(fd, data):
        writes.append(data)
        if len(writes) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    with LocalHTTPServer(routes) as server:
        monkeypatch.setattr(status_log, "_write_all", full_disk_on_the_third_record)
        assert main(argv(server)) == 2
        lines = error_lines(capsys)
        assert len(lines) == 1 and "No space left on device" in lines[0], lines
        records = log_records(root / "fetch_status.jsonl")
        assert [r["status"] for r in records] == ["ok", "ok"]
        monkeypatch.setattr(status_log, "_write_all", real_write)
        # The third clip's file was renamed into place before its record failed: adopted, not fetched again.
        assert_resumes(server, argv(server), routes, [f"{y}_0" for y in ids[:3]], root)


def test_fetch_stops_when_ffmpeg_disappears_mid_run(tmp_path, media, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    original_path = os.environ["PATH"]
    root = tmp_path / "root"
    ids, routes, argv = fetch_setup(tmp_path, media, root, n=3)
    empty = tmp_path / "empty-bin"
    empty.mkdir()

    def uninstall_then_serve(request):
        monkeypatch.setenv("PATH", str(empty))       # FFmpeg is gone from here on
        return media["h264_aac"]

    with LocalHTTPServer({**routes, f"/v/{ids[1]}.mp4": uninstall_then_serve}) as server:
        assert main(argv(server)) == 2
        lines = error_lines(capsys)
        assert len(lines) == 1 and "ffmpeg" in lines[0] and "not found" in lines[0], lines
        assert [(r["clip_id"], r["status"]) for r in log_records(root / "fetch_status.jsonl")] == [
            (f"{ids[0]}_0", "ok")]
        monkeypatch.setenv("PATH", original_path)
        server[f"/v/{ids[1]}.mp4"] = media["h264_aac"]
        assert_resumes(server, argv(server), routes, [f"{ids[0]}_0"], root)


def trim_root(root, media, n=3):
    manifest = media_manifest(root, media, ["h264_aac"] * n)
    write_manifest(manifest, root / "manifest.csv")
    return ["trim", "--root", str(root), "--no-progress"]


def assert_trim_stopped(capsys, root, reason, manifest_bytes, finished):
    lines = error_lines(capsys)
    assert len(lines) == 1 and reason in lines[0], lines
    records = log_records(root / "trim_status.jsonl")
    assert [r["status"] for r in records] == ["ok"] * finished          # no clip marked as an error
    assert (root / "manifest.csv").read_bytes() == manifest_bytes       # nothing written over the manifest


def test_trim_enospc_injected_at_the_write(tmp_path, media, capsys, monkeypatch):
    root = tmp_path / "root"
    argv = trim_root(root, media)
    manifest_bytes = (root / "manifest.csv").read_bytes()
    real_write, calls = trim_module.write_output, []

    def full_disk_on_the_third_wav(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, data)

    monkeypatch.setattr(trim_module, "write_output", full_disk_on_the_third_wav)
    assert main(argv) == 2
    assert_trim_stopped(capsys, root, "No space left on device", manifest_bytes, finished=2)
    monkeypatch.setattr(trim_module, "write_output", real_write)
    assert main(argv) == 0
    assert "reused 2" in capsys.readouterr().out
    assert set(read_manifest(root / "manifest.csv")["trim_status"]) == {"ok"}


def test_trim_on_a_full_then_read_only_small_filesystem(tmp_path, media, capsys):
    staging = tmp_path / "staging"
    argv_staging = trim_root(staging, media)
    used = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    wav = 132_300 * 2 * 2 + 44                                   # 3 s of 16-bit stereo at 44.1 kHz
    with small_filesystem(tmp_path / "fs", used + wav + wav // 2 + 64 * 1024) as fs:
        if fs is None:
            pytest.skip("mounting a tmpfs needs root; the injected-ENOSPC test covers this without it")
        root = fs.path / "root"
        shutil.copytree(staging, root)
        argv = [a if a != str(staging) else str(root) for a in argv_staging]
        manifest_bytes = (root / "manifest.csv").read_bytes()
        assert main(argv) == 2
        assert_trim_stopped(capsys, root, "No space left on device", manifest_bytes, finished=1)
        fs.resize(40 * MB, read_only=True)
        before = tree_digest(root)
        assert main(argv) == 2
        assert_trim_stopped(capsys, root, "Read-only file system", manifest_bytes, finished=1)
        assert tree_digest(root) == before
        fs.resize(40 * MB)
        assert main(argv) == 0
        assert "reused 1" in capsys.readouterr().out
        assert set(read_manifest(root / "manifest.csv")["trim_status"]) == {"ok"}


def test_trim_stops_when_the_media_root_vanishes(tmp_path, media, capsys, monkeypatch):
    root = tmp_path / "root"
    argv = trim_root(root, media)
    real_decode, calls = trim_module.decode_audio, []

    def unmounted_on_the_second_clip(path, **kw):
        calls.append(path)
        if len(calls) == 2:
            shutil.rmtree(root)                       # e.g. a network share that went away
        return real_decode(path, **kw)

    monkeypatch.setattr(trim_module, "decode_audio", unmounted_on_the_second_clip)
    assert main(argv) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "vanished" in lines[0], lines
    assert not root.exists()                          # not recreated by the outputs of the next clips
