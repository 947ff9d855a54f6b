"""Distributors: in-process, local process pool and a real local Ray instance give the same results."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from builder.distributor import Distributor, chunk, default_shard_size
from builder.errors import InputError
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch
from builder.media.frames import FrameOptions, frames
from builder.media.trim import TrimOptions, trim
from support.http_server import LocalHTTPServer, Response
from support.media import manifest_rows, media_manifest, ytid_for


def pid_of(shard: list[int], offset: int) -> list[tuple[int, int]]:
    return [(x + offset, os.getpid()) for x in shard]


def test_chunking():
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunk([], 3) == []
    assert default_shard_size(1000, 2) == 64 and default_shard_size(10, 2) == 2 and default_shard_size(1, 4) == 1
    with pytest.raises(InputError):
        Distributor("spark")


def test_local_pool_runs_in_other_processes():
    with Distributor("local", workers=2) as pool:
        results = [r for part in pool.imap_unordered(pid_of, chunk(list(range(8)), 2), 100) for r in part]
    assert sorted(x for x, _ in results) == list(range(100, 108))
    assert os.getpid() not in {p for _, p in results}
    with Distributor("local", workers=1) as inline:
        assert list(inline.imap_unordered(pid_of, [[1]], 0)) == [[(1, os.getpid())]]


def test_trim_same_with_a_process_pool(tmp_path, media):
    names = ["h264_aac", "vp9_opus", "mpeg4_mp3", "portrait", "corrupt"]
    results = {}
    for workers in (1, 2):
        root = tmp_path / f"w{workers}"
        manifest = media_manifest(root, media, names)
        out, _ = trim(manifest, TrimOptions(root=root, policy="loudest", workers=workers, shard_size=1, progress=False))
        results[workers] = (root, out)
    (root1, out1), (root2, out2) = results[1], results[2]
    cols = ["clip_id", "audio_path", "window_offset", "trim_status", "trim_error"]
    assert out1[cols].equals(out2[cols])
    for rel in out1.loc[out1["trim_status"] == "ok", "audio_path"]:
        assert (root1 / rel).read_bytes() == (root2 / rel).read_bytes()


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray") if os.environ.get("LLINET_ALLOW_NO_RAY") else __import__("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_fetch_trim_frames_on_ray(tmp_path, media, local_ray):
    ids = [ytid_for(i, "ray") for i in range(4)]
    routes = {f"/v/{ids[0]}.mp4": media["h264_aac"], f"/v/{ids[1]}.mp4": Response(404, b"gone"),
              f"/v/{ids[2]}.mp4": media["vp9_opus"], f"/v/{ids[3]}.mp4": media["portrait"]}
    manifest = manifest_rows([(ids[0], "A", True, 0), (ids[1], "A", True, 1), (ids[2], "B", True, 0),
                              (ids[3], "A", False, 2)])
    outputs = {}
    with LocalHTTPServer(routes) as server:
        for kind in ("ray", "local"):
            root = tmp_path / kind
            workers = 2 if kind == "ray" else 1          # the reference runs in this process
            opts = FetchOptions(root=root, url_template=server.base_url + "/v/{ytid}.mp4", backoff=0.01,
                                distributor=kind, workers=workers, shard_size=1, progress=False,
                                rate_state_dir=tmp_path / "rate")
            out, summary = fetch(manifest, opts)
            out, _ = trim(out, TrimOptions(root=root, distributor=kind, workers=workers, shard_size=1,
                                           progress=False))
            out, _ = frames(out, FrameOptions(root=root, distributor=kind, workers=workers, shard_size=1,
                                              progress=False))
            outputs[kind] = out
        assert server.count(f"/v/{ids[1]}.mp4") == 2      # once per distributor: permanent, not retried
    assert local_ray.is_initialized()                     # the stage did not shut down a Ray it did not start
    ray_out, local_out = outputs["ray"], outputs["local"]
    cols = ["clip_id", "selected", "fetch_status", "replaces", "media_path", "audio_path", "trim_status",
            "frame_path", "frames_status"]
    pd.testing.assert_frame_equal(ray_out[cols], local_out[cols])
    assert list(ray_out["fetch_status"]) == ["ok", "unavailable", "ok", "ok"]
    assert ray_out.iloc[3]["replaces"] == f"{ids[1]}_0"
    assert all((tmp_path / "ray" / p).is_file() for p in ray_out.loc[ray_out["selected"], "frame_path"])
