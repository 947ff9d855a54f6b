"""`llinet-build review` as a command: start, print the URL, save, survive SIGKILL; and its start-up errors."""
from __future__ import annotations

import queue
import re
import socket
import subprocess
import sys
import threading

import numpy as np

from builder.annotate.coco import load_annotations, mask_for_clip
from builder.commands.main import main
from builder.curate.decisions import read_decisions
from builder.manifest.schema import read_manifest_dir
from builder.review.state import mask_to_runs
from support.review import build_media, clip_id, request

START_TIMEOUT_S = 60


def start_server(root, *extra: str) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "builder.commands.main", "review", "--manifest", str(root / "manifest"),
               "--media", str(root), "--port", "0", "--reviewer", "eve", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"no URL printed: {seen}") from None
        seen.append(line)
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        if match:
            return process, match.group(1)


def test_cli_serves_saves_and_loses_nothing_when_killed(tmp_path):
    build_media(tmp_path)
    process, url = start_server(tmp_path)
    try:
        tabla = clip_id("Tabla", 2)
        status, _, _ = request(url + "api/decision", "POST", {"clip_id": tabla, "decision": "accept"})
        assert status == 200
        mask = np.zeros((128, 128), dtype=bool)
        mask[40:80, 50:70] = True
        status, _, _ = request(url + f"api/mask/{tabla}", "PUT", {"width": 128, "height": 128,
                                                                  "runs": mask_to_runs(mask)})
        assert status == 200
        status, headers, body = request(url)
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"llinet review" in body
    finally:
        process.kill()                               # SIGKILL: no chance to flush or clean up
        process.wait(timeout=10)
    decisions = read_decisions(tmp_path / "decisions.csv")
    assert decisions[tabla].decision == "accept" and decisions[tabla].reviewer == "eve"
    assert np.array_equal(mask_for_clip(load_annotations(tmp_path / "annotations.json"), tabla), mask)
    assert not list(tmp_path.glob(".*.tmp"))        # no half-written temp file left behind
    # the file is the one `curate --decisions` reads
    assert main(["curate", "--manifest-dir", str(tmp_path / "manifest"), "--out", str(tmp_path / "curated"),
                 "--decisions", str(tmp_path / "decisions.csv")]) == 0
    curated = read_manifest_dir(tmp_path / "curated").set_index("clip_id")
    assert curated.loc[tabla, "curation"] == "accepted" and curated.loc[tabla, "curation_reviewer"] == "eve"


def test_cli_start_up_errors_are_clear(tmp_path, capsys):
    build_media(tmp_path)
    args = ["review", "--manifest", str(tmp_path / "manifest"), "--media", str(tmp_path)]
    assert main(["review", "--manifest", str(tmp_path / "nope.csv"), "--media", str(tmp_path)]) == 2
    assert "manifest not found" in capsys.readouterr().err
    assert main(args + ["--port", "70000"]) == 2
    assert "--port must be within 0..65535" in capsys.readouterr().err
    (tmp_path / "annotations.json").write_text("{broken")
    assert main(args + ["--port", "0"]) == 2
    assert "annotations.json" in capsys.readouterr().err
    (tmp_path / "annotations.json").unlink()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(args + ["--port", str(busy.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "cannot listen" in err and "--port 0" in err
