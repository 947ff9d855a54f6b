"""kill -9 in the middle of a fetch, then rerun == one uninterrupted run; nothing finished is fetched twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.manifest.schema import read_manifest, write_manifest
from support.http_server import LocalHTTPServer, Response, Route
from support.media import manifest_rows, ytid_for

REPO = Path(__file__).resolve().parents[1]


def scenario(media):
    """8 clips in two classes (one gone, replaced from the reserve), each answered slowly."""
    routes, entries = {}, []
    plan = [("A", True, "ok"), ("A", True, "gone"), ("A", True, "ok"), ("A", False, "ok"), ("A", False, "ok"),
            ("B", True, "ok"), ("B", True, "ok"), ("B", False, "ok")]
    for i, (cls, selected, kind) in enumerate(plan):
        ytid = ytid_for(i)
        routes[f"/v/{ytid}.mp4"] = (Response(404, b"gone") if kind == "gone"
                                    else Route(media["h264_aac"], delay_s=0.12))
        rank = sum(1 for e in entries if e[1] == cls)
        entries.append((ytid, cls, selected, rank))
    return routes, manifest_rows(entries)


def cli(manifest_path, root, server, tmp_path):
    return [sys.executable, "-m", "builder.commands.main", "fetch", str(manifest_path), "--out", str(root),
            "--url-template", server.base_url + "/v/{ytid}.mp4", "--workers", "1", "--backoff", "0.01",
            "--timeout", "5", "--no-progress"]


def ok_records(root):
    path = root / "fetch_status.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record["status"] == "ok":
            out.append(record["clip_id"])
    return out


def test_kill_9_then_rerun_equals_uninterrupted(tmp_path, media):
    routes, manifest = scenario(media)
    manifest_path = tmp_path / "m.csv"
    write_manifest(manifest, manifest_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with LocalHTTPServer(routes) as server:
        reference_root, resumed_roots = tmp_path / "reference", []
        subprocess.run(cli(manifest_path, reference_root, server, tmp_path), env=env, check=True,
                       capture_output=True, timeout=120)

        for kill_after in (1, 4):                            # two different moments of the run
            root = tmp_path / f"killed-after-{kill_after}"
            proc = subprocess.Popen(cli(manifest_path, root, server, tmp_path), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            while len(ok_records(root)) < kill_after and time.time() < deadline and proc.poll() is None:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            assert proc.returncode == -signal.SIGKILL
            done_before_kill = set(ok_records(root))
            assert kill_after <= len(done_before_kill) < 7       # killed mid-run
            assert not (root / "manifest.csv").exists()         # the manifest is only written at the end
            time.sleep(0.5)                                     # let an orphaned FFmpeg finish its request
            before = {path: server.count(path) for path in routes}

            subprocess.run(cli(manifest_path, root, server, tmp_path), env=env, check=True,
                           capture_output=True, timeout=120)
            for clip_id in done_before_kill:
                path = f"/v/{clip_id.rsplit('_', 1)[0]}.mp4"
                assert server.count(path) == before[path], f"{clip_id} was downloaded again"
            resumed_roots.append(root)

    reference = read_manifest(reference_root / "manifest.csv")
    assert int(reference["selected"].sum()) == 5 and (reference["replaces"] != "").sum() == 1
    for root in resumed_roots:
        assert read_manifest(root / "manifest.csv").equals(reference)
        assert sorted(p.name for p in (root / "clips").iterdir()) == \
            sorted(p.name for p in (reference_root / "clips").iterdir())


def test_file_renamed_but_not_logged_is_adopted_without_a_request(tmp_path, media):
    """A kill between the rename into clips/ and the log append: the rerun adopts the file."""
    routes, manifest = scenario(media)
    root = tmp_path / "root"
    with LocalHTTPServer(routes) as server:
        opts = FetchOptions(root=root, url_template=server.base_url + "/v/{ytid}.mp4", backoff=0.01,
                            progress=False, rate_state_dir=tmp_path / "rate", cache_dir=tmp_path / "cache")
        first, _ = fetch(manifest, opts)
        log = root / "fetch_status.jsonl"
        lines = log.read_text().splitlines(keepends=True)
        last = json.loads(lines[-1])
        assert last["status"] == "ok"
        log.write_text("".join(lines[:-1]) + lines[-1][:25])   # drop it, leaving a torn line
        before = server.count(f"/v/{last['clip_id'].rsplit('_', 1)[0]}.mp4")
        again, _ = fetch(manifest, opts)
        assert server.count(f"/v/{last['clip_id'].rsplit('_', 1)[0]}.mp4") == before
    adopted = json.loads(log.read_text().splitlines()[-1])
    assert adopted["clip_id"] == last["clip_id"] and adopted["adopted"] is True
    cols = ["clip_id", "selected", "fetch_status", "media_path", "replaces", "replaced_by"]
    assert again[cols].equals(first[cols])
