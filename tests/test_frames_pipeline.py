"""fetch -> trim -> frames through the CLI, on the committed manifest format (clips.csv + reserve.csv)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import soundfile

from builder.commands.main import main
from builder.demo.videos import grey_to_index_mod20, second_colour
from builder.manifest.schema import read_manifest, write_manifest_dir
from support.http_server import LocalHTTPServer, Response
from support.media import manifest_rows, ytid_for


def test_cli_pipeline_on_a_manifest_folder(tmp_path, media, capsys):
    ids = [ytid_for(i, "pipe") for i in range(5)]
    routes = {f"/{ids[0]}.mp4": media["h264_aac"], f"/{ids[1]}.mp4": Response(404, b"gone"),
              f"/{ids[2]}.mp4": media["vp9_opus"], f"/{ids[3]}.mp4": media["mpeg4_mp3"],
              f"/{ids[4]}.mp4": media["portrait"]}
    # AudioSet segments start anywhere in a video: start at 1.0 s, so every time below is shifted by 1 s.
    manifest = manifest_rows([(ids[0], "Banjo", True, 0), (ids[1], "Banjo", True, 1), (ids[2], "Tabla", True, 0),
                              (ids[3], "Banjo", False, 2), (ids[4], "Tabla", False, 1)], start=1.0, end=11.0)
    write_manifest_dir(manifest, tmp_path / "manifests")
    root = tmp_path / "media"
    with LocalHTTPServer(routes) as server:
        assert main(["fetch", str(tmp_path / "manifests"), "--out", str(root), "--workers", "1",
                     "--url-template", server.base_url + "/{ytid}.mp4", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "TOTAL" in printed and "available%" in printed and "not_found 1" in printed
    assert main(["trim", "--root", str(root), "--policy", "loudest", "--no-progress"]) == 0
    assert main(["frames", "--root", str(root), "--no-progress"]) == 0

    out = read_manifest(root / "manifest.csv")
    chosen = out[out["selected"]].set_index("ytid")
    assert sorted(chosen.index) == sorted([ids[0], ids[2], ids[3]])
    assert chosen.loc[ids[3], "replaces"] == f"{ids[1]}_1000"
    for ytid in chosen.index:
        assert soundfile.info(root / chosen.loc[ytid, "audio_path"]).frames == 132_300
    # h264_aac is loud from 6 s to 9 s of the source = 5 s to 8 s of the segment fetched from 1 s.
    assert float(chosen.loc[ids[0], "window_offset"]) == pytest.approx(5.0, abs=0.05)
    frame_time = float(chosen.loc[ids[0], "frame_time"])
    assert frame_time == pytest.approx(6.5, abs=0.05)
    image = cv2.imread(str(root / chosen.loc[ids[0], "frame_path"]))
    assert image.shape == (120, 120, 3)
    # Source time 7.5 s (segment 6.5 s): colour of second 7, frame 75 -> grey index 15.
    full = cv2.imread(str(root / chosen.loc[ids[0], "frame_full_path"]))
    left = full[10:-10, 10:70, ::-1].reshape(-1, 3).mean(axis=0)
    assert np.abs(left - second_colour(7)).max() < 15
    assert grey_to_index_mod20(full[10:-10, 90:150].mean()) == 15


def test_offline_media_demo(tmp_path):
    """The demo's own loopback server (Range support) + the three real stages on generated videos."""
    from builder.demo.media_run import media_demo

    result = media_demo(tmp_path / "demo")
    out = result["manifest"]
    chosen = out[out["selected"]]
    assert sorted(chosen["ytid"]) == ["demoBanjo01", "demoBanjo03", "demoTabla01", "demoTabla02"]
    assert out.set_index("ytid").loc["demoBanjo02", "fetch_error"] == "not_found"
    assert set(chosen["trim_status"]) == {"ok"} and set(chosen["frames_status"]) == {"ok"}
    root = tmp_path / "demo" / "media"
    assert all((root / p).is_file() for p in list(chosen["audio_path"]) + list(chosen["frame_path"]))
    assert result["fetch"].per_class["Banjo"]["replaced"] == 1
