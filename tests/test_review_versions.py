"""The review server when several pages, reviewers or scripts write at once (real HTTP on loopback):
versions and 409 conflicts for decisions and masks, the change feed a page polls, a burst of 64
connections, and the waveform strips."""
from __future__ import annotations

import http.client
import json
import threading

import numpy as np
import pytest
from PIL import Image

from builder.curate.decisions import Decision, read_decisions, record_decision
from builder.manifest.media_root import STRIPS_DIR
from builder.review.changes import decision_version
from builder.review.state import mask_to_runs
from builder.review.strips import HEIGHT, PALETTE, WIDTH
from support.review import clip_id, request

TABLA = clip_id("Tabla", 0)
DRUM = clip_id("Drum", 0)


@pytest.fixture
def review_options() -> dict:
    """conftest.py's ``served`` with the server's --reviewer: a decision sent without a name is ana's."""
    return {"reviewer": "ana"}


def post(server, body: dict) -> tuple[int, dict]:
    status, _, raw = request(server.url + "api/decision", "POST", body)
    return status, json.loads(raw)


def state(server) -> dict:
    return json.loads(request(server.url + "api/state")[2])


def test_a_decision_based_on_an_old_version_is_refused_with_the_current_one(served):
    server, root = served
    clips = {c["id"]: c for c in state(server)["clips"]}
    assert "version" not in clips[DRUM] and clips[DRUM]["decision"] is None           # no decision, no version
    status, first = post(server, {"clip_id": DRUM, "decision": "accept", "reviewer": "cora", "base": ""})
    assert status == 200 and first["clip"]["version"] != ""
    # a second page still holding version "" tries to reject: refused, with cora's accept to show
    status, answer = post(server, {"clip_id": DRUM, "decision": "reject", "reason": "no drum", "reviewer": "dan",
                                   "base": ""})
    assert status == 409 and "accepted by cora" in answer["error"]
    conflict = answer["conflict"]
    assert conflict["kind"] == "decision" and conflict["clip"]["decision"]["reviewer"] == "cora"
    assert conflict["clip"]["version"] == first["clip"]["version"] and conflict["class"]["name"] == "Drum"
    assert read_decisions(root / "decisions.csv")[DRUM].decision == "accept"       # nothing was replaced
    # "use mine": the same change based on the version just seen
    status, mine = post(server, {"clip_id": DRUM, "decision": "reject", "reason": "no drum", "reviewer": "dan",
                                 "base": conflict["clip"]["version"]})
    assert status == 200 and read_decisions(root / "decisions.csv")[DRUM].reviewer == "dan"
    # undo of cora's accept (based on her version) now conflicts too; without a base it is last-writer-wins
    status, _ = post(server, {"clip_id": DRUM, "decision": "undecided", "base": first["clip"]["version"]})
    assert status == 409
    status, _ = post(server, {"clip_id": DRUM, "decision": "undecided", "base": mine["clip"]["version"]})
    assert status == 200 and DRUM not in read_decisions(root / "decisions.csv")
    status, answer = post(server, {"clip_id": DRUM, "decision": "accept", "base": 5})
    assert status == 400 and "'base'" in answer["error"]


def test_an_undo_restores_the_earlier_decision_with_its_time(served):
    server, root = served
    post(server, {"clip_id": TABLA, "decision": "reject", "reason": "blurred", "reviewer": "ben"})
    before = read_decisions(root / "decisions.csv")[TABLA]
    status, after = post(server, {"clip_id": TABLA, "decision": "accept", "reviewer": "cora"})
    status, restored = post(server, {"clip_id": TABLA, "decision": "reject", "reason": "blurred", "reviewer": "ben",
                                     "time": before.time, "base": after["clip"]["version"]})
    assert status == 200 and read_decisions(root / "decisions.csv")[TABLA].row() == before.row()
    assert restored["clip"]["version"] == decision_version(before)
    status, answer = post(server, {"clip_id": TABLA, "decision": "accept", "time": "yesterday"})
    assert status == 422 and "ISO 8601" in answer["error"]


def test_mask_saves_carry_the_version_they_were_based_on(served):
    server, root = served
    url = server.url + f"api/mask/{TABLA}"
    mask = np.zeros((128, 128), dtype=bool)
    mask[20:60, 30:90] = True
    runs = mask_to_runs(mask)
    opened = json.loads(request(url)[2])                       # two editors open the clip: no mask yet
    assert opened["version"] == ""
    status, _, body = request(url, "PUT", {"width": 128, "height": 128, "runs": runs, "base": ""})
    saved = json.loads(body)
    assert status == 200 and saved["version"] and saved["version"] == json.loads(request(url)[2])["version"]
    other = np.zeros((128, 128), dtype=bool)
    other[70:100, 10:40] = True
    status, _, body = request(url, "PUT", {"width": 128, "height": 128, "runs": mask_to_runs(other), "base": ""})
    answer = json.loads(body)
    assert status == 409 and answer["conflict"] == {"kind": "mask", "clip_id": TABLA, "masked": True,
                                                    "version": saved["version"], "area": 40 * 60}
    assert "2400 px" in answer["error"]
    status, _, body = request(url, "DELETE", {"base": ""})                           # stale delete: refused too
    assert status == 409 and json.loads(request(url)[2])["runs"] == runs
    status, _, body = request(url, "DELETE", {"base": saved["version"]})
    assert status == 200 and json.loads(request(url)[2])["runs"] is None


def test_the_change_feed_reports_every_writer(served):
    server, root = served
    first = state(server)
    seq, instance = first["seq"], first["instance"]

    def changes(since: int, inst: str = instance) -> dict:
        return json.loads(request(server.url + f"api/changes?since={since}&instance={inst}")[2])

    assert changes(seq) == {"instance": instance, "seq": seq, "clips": [], "classes": [], "outcomes": {}}
    post(server, {"clip_id": DRUM, "decision": "reject", "reason": "no drum"})
    # another program writes the file directly (a script, a second server)
    record_decision(root / "decisions.csv", Decision(TABLA, "accept", "", "script", ""))
    mask = np.zeros((128, 128), dtype=bool)
    mask[5:9, 5:9] = True
    request(server.url + f"api/mask/{clip_id('Shofar', 1)}", "PUT", {"width": 128, "height": 128,
                                                                   "runs": mask_to_runs(mask)})
    feed = changes(seq)
    assert feed["seq"] > seq
    clips = {c["id"]: c for c in feed["clips"]}
    assert set(clips) == {DRUM, TABLA, clip_id("Shofar", 1)}
    assert clips[TABLA]["decision"]["reviewer"] == "script" and clips[clip_id("Shofar", 1)]["masked"]
    assert {c["name"] for c in feed["classes"]} == {"Drum", "Tabla", "Shofar"}
    assert feed["outcomes"][DRUM] == "rejected" and clip_id("Drum", 3) in feed["outcomes"]
    assert changes(feed["seq"])["clips"] == []                  # nothing new since
    assert changes(seq, "another-run") == {"instance": instance, "reload": True}
    assert changes(feed["seq"] + 5)["reload"] is True           # a sequence this run never gave out
    status, _, body = request(server.url + "api/changes?since=x")
    assert status == 400 and "'since'" in json.loads(body)["error"]


def test_a_burst_of_64_concurrent_posts_gets_no_reset(served):
    server, root = served
    ids = [clip_id(cls, i) for cls in ("Banjo", "Drum", "Tabla", "Shofar") for i in range(4)]
    count = 64
    barrier = threading.Barrier(count)
    results: list[object] = []

    def one(k: int) -> None:
        body = json.dumps({"clip_id": ids[k % len(ids)], "decision": "accept", "reviewer": f"r{k}"}).encode()
        barrier.wait()                       # every thread connects at the same moment
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            connection.request("POST", "/api/decision", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            results.append(response.status)
            connection.close()
        except OSError as exc:               # ConnectionResetError, BrokenPipeError, ...
            results.append(repr(exc))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * count, [r for r in results if r != 200][:5]
    assert sorted(read_decisions(root / "decisions.csv")) == sorted(ids)


def test_strips_are_drawn_once_with_the_window_marked(served):
    server, root = served
    status, headers, body = request(server.url + f"media/strip/{TABLA}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    (cached,) = (root / STRIPS_DIR).glob(f"{TABLA}.*.png")
    assert cached.read_bytes() == body
    image = Image.open(cached)
    assert image.size == (WIDTH, HEIGHT)
    pixels = np.asarray(image.convert("RGB"))
    window_colour = np.array(PALETTE[3])
    columns = np.flatnonzero((pixels == window_colour).all(axis=2).any(axis=0))
    # the tone plays from 2.0 s to the end of the 10 s segment; the window is 2.0-5.0 s
    assert columns.min() == pytest.approx(WIDTH * 0.2, abs=2) and columns.max() == pytest.approx(WIDTH * 0.5, abs=2)
    loud = (pixels != np.array(PALETTE[0])).all(axis=2) & (pixels != np.array(PALETTE[2])).all(axis=2)
    heights = loud.sum(axis=0)
    assert heights[int(WIDTH * 0.1)] < heights[int(WIDTH * 0.25)] / 2     # quiet noise before the tone
    assert heights[int(WIDTH * 0.6)] > heights[int(WIDTH * 0.1)]          # the tone goes on after the window
    mtime = cached.stat().st_mtime_ns
    status, headers, again = request(server.url + f"media/strip/{TABLA}")
    assert again == body and cached.stat().st_mtime_ns == mtime               # served from the cache
    status, _, _ = request(server.url + f"media/strip/{TABLA}", headers={"If-None-Match": headers["ETag"]})
    assert status == 304
    (root / "clips" / f"{TABLA}.wav").unlink()                 # only the window WAV left: drawn from it alone
    status, _, from_window = request(server.url + f"media/strip/{TABLA}")
    assert status == 200 and len(list((root / STRIPS_DIR).glob(f"{TABLA}.*.png"))) == 1
    pixels = np.asarray(Image.open((root / STRIPS_DIR).glob(f"{TABLA}.*.png").__next__()).convert("RGB"))
    wave = ~(pixels == np.array(PALETTE[0])).all(axis=2) & ~(pixels == np.array(PALETTE[2])).all(axis=2)
    assert wave[:, int(WIDTH * 0.6)].sum() <= 2                             # outside the window: the centre line
    status, _, body = request(server.url + f"media/strip/{clip_id('Banjo', 3)}")   # no audio at all
    assert status == 404 and "no audio file" in json.loads(body)["error"]
