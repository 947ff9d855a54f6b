"""The review server over real HTTP (no browser): state, media, decisions, masks, and every refused request."""
from __future__ import annotations

import http.client
import json
import socket
import threading

import numpy as np
import pytest
from pycocotools.coco import COCO

from builder.curate.decisions import read_decisions
from builder.errors import InputError
from builder.review.state import ReviewError, mask_to_runs, runs_to_mask
from support.review import CAP, build_media, clip_id, make_session, request, running_server

TABLA = clip_id("Tabla", 0)
DRUM = clip_id("Drum", 0)


@pytest.fixture
def review_options() -> dict:
    """conftest.py's ``served`` with the server's --reviewer: a decision sent without a name is ana's."""
    return {"reviewer": "ana"}


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    """One server for the tests that only read (the refused-path cases)."""
    root = tmp_path_factory.mktemp("review_read_only")
    build_media(root)
    with running_server(make_session(root)) as server:
        yield server


def raw_request(server, request_bytes: bytes) -> tuple[int, dict]:
    """Send bytes as they are (no client-side normalisation of '..'); returns (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_bytes)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# ---------------------------------------------------------------------------- runs encoding
def test_runs_hand_computed_and_round_trip():
    mask = np.array([[True, False, False], [True, True, False]])
    assert mask_to_runs(mask) == [0, 1, 2, 2, 1]                  # row-major 1,0,0,1,1,0: background first
    assert mask_to_runs(~mask) == [1, 2, 2, 1]
    assert np.array_equal(runs_to_mask([0, 1, 2, 2, 1], 3, 2), mask)
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (5, 7), (64, 48)]:
        random_mask = rng.random(shape) > 0.5
        assert np.array_equal(runs_to_mask(mask_to_runs(random_mask), shape[1], shape[0]), random_mask)


@pytest.mark.parametrize("runs, width, height, message", [
    ([1, 2], 2, 2, "cover 3 pixels"), ([4.0], 2, 2, "non-negative integers"), ([-1, 5], 2, 2, "non-negative"),
    ("0,4", 2, 2, "list"), ([True, 3], 2, 2, "integers"), ([4], 0, 4, "'width'"), ([4], 2, "2", "'height'")])
def test_malformed_runs_are_refused(runs, width, height, message):
    with pytest.raises(ReviewError, match=message) as info:
        runs_to_mask(runs, width, height)
    assert info.value.status == 400


# ---------------------------------------------------------------------------- state and media
def test_state_lists_clips_flags_outcomes_and_counts(served):
    server, _ = served
    status, _, body = request(server.url + "api/state")
    state = json.loads(body)
    assert status == 200 and state["cap"] == CAP and len(state["clips"]) == 16
    clips = {c["id"]: c for c in state["clips"]}
    assert clips[clip_id("Banjo", 2)]["flags"] == ["silent"] and clips[clip_id("Drum", 1)]["flags"] == ["dark"]
    assert clips[clip_id("Drum", 2)]["flags"] == ["ambiguous"]
    assert clips[clip_id("Banjo", 3)]["flags"] == ["unavailable"] and not clips[clip_id("Banjo", 3)]["frame"]
    # flagged clips are auto-rejected by curate, so Drum's reserve clip moves up into the selection
    assert clips[clip_id("Drum", 3)]["outcome"] == "selected" and clips[clip_id("Drum", 1)]["outcome"] == "rejected"
    assert clips[clip_id("Tabla", 3)]["outcome"] == "beyond_cap"
    assert [c["id"] for c in state["clips"] if c["maskable"]] == [clip_id(k, i) for k in ("Shofar", "Tabla")
                                                                   for i in range(4)]
    counts = {c["name"]: c for c in state["classes"]}
    assert counts["Drum"]["selected"] == 2 and counts["Drum"]["short"] == 1 and counts["Drum"]["auto_rejected"] == 2
    assert counts["Tabla"]["split"] == "test" and counts["Banjo"]["split"] == "train"


def test_media_comes_from_the_manifest_with_ranges(served):
    server, root = served
    status, headers, body = request(server.url + f"media/frame/{TABLA}")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert body == (root / "frames" / f"{TABLA}.jpg").read_bytes()
    wav = (root / "audio" / f"{TABLA}.wav").read_bytes()
    status, headers, body = request(server.url + f"media/audio/{TABLA}", headers={"Range": "bytes=10-99"})
    assert status == 206 and body == wav[10:100] and headers["Content-Range"] == f"bytes 10-99/{len(wav)}"
    status, _, body = request(server.url + f"media/audio/{TABLA}", headers={"Range": "bytes=-16"})
    assert status == 206 and body == wav[-16:]
    status, _, body = request(server.url + f"media/audio/{TABLA}", headers={"Range": f"bytes={len(wav)}-"})
    assert status == 416 and "unsatisfiable" in json.loads(body)["error"]
    status, headers, _ = request(server.url + f"media/frame/{TABLA}")
    status, _, body = request(server.url + f"media/frame/{TABLA}", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""                        # unchanged: the browser keeps its copy
    frame = root / "frames" / f"{TABLA}.jpg"
    frame.write_bytes(frame.read_bytes() + b"\0")               # a re-extracted frame is sent again
    status, _, body = request(server.url + f"media/frame/{TABLA}", headers={"If-None-Match": headers["ETag"]})
    assert status == 200 and body == frame.read_bytes()
    status, _, body = request(server.url + f"media/frame/{clip_id('Banjo', 3)}")   # no frame in the manifest
    assert status == 404 and "frame_path" in json.loads(body)["error"]


@pytest.mark.parametrize("path, status, words", [
    ("/media/frame/../../manifest/clips.csv", 400, "'..'"),
    ("/media/frame/%2e%2e%2f%2e%2e%2fmanifest%2fclips.csv", 400, "'..'"),
    ("/static/../review.py", 400, "'..'"),
    ("/static/..%2f..%2fbuilder%2freview.py", 400, "'..'"),
    ("/media/frame/..\\..\\etc\\passwd", 400, "backslash"),
    ("/media/frame/not-a-clip", 400, "invalid clip ID"),
    ("/media/frame/abcdefghijk_123", 404, "not in the manifest"),
    ("/media/video/" + TABLA, 404, "no such page"),
    ("/static/review.py", 404, "no static file"),
    ("/etc/passwd", 404, "no such page"),
    ("/api/mask/x_1", 400, "invalid clip ID"),
])
def test_path_traversal_and_unknown_paths_get_json_4xx(read_only, path, status, words):
    server = read_only
    got, body = raw_request(server, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                                    "Connection: close\r\n\r\n".encode())
    assert got == status and words in body["error"] and body["status"] == status


def test_malformed_requests_get_clear_4xx(served):
    server, root = served
    url = server.url + "api/decision"
    ok = {"clip_id": DRUM, "decision": "accept"}
    cases = [
        (request(url, "POST", raw=json.dumps(ok).encode(), headers={"Content-Type": "text/plain"}), 415,
         "application/json"),
        (request(url, "POST", raw=b"{not json"), 400, "not valid JSON"),
        (request(url, "POST", body=[ok]), 400, "JSON object"),
        (request(url, "POST", body={"decision": "accept"}), 400, "invalid clip ID None"),
        (request(url, "POST", body={**ok, "decision": "maybe"}), 400, "'decision' must be"),
        (request(url, "POST", body={**ok, "reason": 5}), 400, "'reason' must be a string"),
        (request(url, "POST", body={**ok, "decision": "reject"}), 422, "needs a reason"),
        (request(url, "POST", body={**ok, "clip_id": "abcdefghijk_1"}), 404, "not in the manifest"),
        (request(url), 405, "GET is not allowed"),
        (request(url, "POST", body=ok, headers={"Origin": "http://evil.example"}), 403, "cross-origin"),
        (request(url, "POST", body=ok, headers={"Host": "evil.example"}), 403, "Host header"),
    ]
    for (status, headers, body), expected, words in cases:
        error = json.loads(body)
        assert (status, headers["Content-Type"]) == (expected, "application/json; charset=utf-8"), error
        assert words in error["error"]
    assert not (root / "decisions.csv").exists()                  # nothing was written by a refused request
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/api/decision")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(1 << 30))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "exceeds" in json.loads(response.read())["error"]
    status, body = raw_request(server, b"BREW /coffee HTCPCP/1.0\r\n\r\n")
    assert status == 400 and "Bad request version" in body["error"]
    status, body = raw_request(server, b"BREW / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status == 405 and "'BREW' is not supported" in body["error"]


def test_decisions_are_written_with_the_library_and_change_the_projection(served):
    server, root = served
    url = server.url + "api/decision"
    status, _, body = request(url, "POST", {"clip_id": DRUM, "decision": "reject", "reason": "no drum",
                                           "reviewer": "ben"})
    answer = json.loads(body)
    assert status == 200 and answer["clip"]["decision"]["reviewer"] == "ben"
    assert answer["clip"]["outcome"] == "rejected" and answer["class"]["selected"] == 1   # Drum: 2 auto-rejected
    request(url, "POST", {"clip_id": clip_id("Drum", 1), "decision": "accept"})          # reviewer accepts "dark"
    status, _, body = request(url, "POST", {"clip_id": TABLA, "decision": "accept"})       # server's --reviewer
    decisions = read_decisions(root / "decisions.csv")
    assert {k: (d.decision, d.reason, d.reviewer) for k, d in decisions.items()} == {
        DRUM: ("reject", "no drum", "ben"), clip_id("Drum", 1): ("accept", "", "ana"), TABLA: ("accept", "", "ana")}
    status, _, body = request(url, "POST", {"clip_id": TABLA, "decision": "undecided"})
    assert status == 200 and json.loads(body)["clip"]["decision"] is None
    assert TABLA not in read_decisions(root / "decisions.csv")
    state = json.loads(request(server.url + "api/state")[2])
    assert {c["name"]: c["selected"] for c in state["classes"]}["Drum"] == 2


def test_concurrent_writers_lose_nothing(served):
    server, root = served
    ids = [clip_id(cls, i) for cls in ("Banjo", "Drum", "Tabla", "Shofar") for i in range(4)]
    results = []

    def post(cid: str) -> None:
        results.append(request(server.url + "api/decision", "POST",
                               {"clip_id": cid, "decision": "reject", "reason": f"r {cid}", "reviewer": "t"})[0])

    threads = [threading.Thread(target=post, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * len(ids)
    decisions = read_decisions(root / "decisions.csv")
    assert sorted(decisions) == sorted(ids) and all(d.reason == f"r {k}" for k, d in decisions.items())


def test_masks_round_trip_through_the_coco_file(served):
    server, root = served
    url = server.url + f"api/mask/{TABLA}"
    status, _, body = request(url)
    assert status == 200 and json.loads(body) == {"clip_id": TABLA, "class": "Tabla", "split": "test",
                                                  "width": 128, "height": 128, "runs": None, "note": "",
                                                  "version": ""}
    mask = np.zeros((128, 128), dtype=bool)
    mask[20:60, 30:90] = True
    status, _, body = request(url, "PUT", {"width": 128, "height": 128, "runs": mask_to_runs(mask)})
    assert status == 200 and json.loads(body)["area"] == 40 * 60 and json.loads(body)["bbox"] == [30, 20, 60, 40]
    coco = COCO(str(root / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
    assert coco.loadImgs(ann["image_id"])[0]["file_name"] == f"frames/{TABLA}.jpg"
    assert runs_to_mask(json.loads(request(url)[2])["runs"], 128, 128).tolist() == mask.tolist()
    refused = [
        (request(url, "PUT", {"width": 128, "height": 128, "runs": [128 * 128]}), 422, "empty"),
        (request(url, "PUT", {"width": 64, "height": 64, "runs": [4000, 96]}), 422, "64x64 (WxH) but the frame"),
        (request(url, "PUT", {"width": 128, "height": 128, "runs": [5]}), 400, "cover 5 pixels"),
        (request(server.url + f"api/mask/{DRUM}", "PUT", {"width": 128, "height": 128, "runs": mask_to_runs(mask)}),
         422, "masks belong to the splits"),
        (request(server.url + f"api/mask/{DRUM}"), 422, "masks belong to the splits"),
    ]
    for (status, _, body), expected, words in refused:
        assert status == expected and words in json.loads(body)["error"]
    assert len(COCO(str(root / "annotations.json")).getAnnIds()) == 1    # the refused writes changed nothing
    status, _, body = request(url, "DELETE", {})
    assert status == 200 and json.loads(body)["removed"] == 1
    assert json.loads(request(url)[2])["runs"] is None


def test_session_refuses_a_broken_decision_file_at_start(tmp_path):
    build_media(tmp_path)
    (tmp_path / "decisions.csv").write_text("clip_id,decision,reason,reviewer\nbad,accept,,x\n")
    with pytest.raises(InputError, match="line 2.*invalid clip ID"):
        make_session(tmp_path)


def test_manifest_paths_that_leave_the_media_root_are_never_served(tmp_path):
    build_media(tmp_path)
    secret = tmp_path.parent / "secret.txt"
    secret.write_text("not for the page")
    manifest_dir = tmp_path / "manifest"
    clips = (manifest_dir / "clips.csv").read_text()
    clips = clips.replace(f"frames/{TABLA}.jpg", "../secret.txt", 1)
    clips = clips.replace(f"audio/{TABLA}.wav", str(secret), 1)
    (manifest_dir / "clips.csv").write_text(clips)
    session = make_session(tmp_path)
    assert {(c, col) for c, col, _ in session.unsafe_paths} == {(TABLA, "frame_path"), (TABLA, "audio_path")}
    with running_server(session) as server:
        for kind in ("frame", "audio"):
            status, _, body = request(server.url + f"media/{kind}/{TABLA}")
            assert status == 404 and "no usable" in json.loads(body)["error"] and b"not for" not in body
