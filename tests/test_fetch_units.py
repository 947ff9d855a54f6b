"""Pure parts of fetch: quota walk, failure classes, status log, pacing, URL templates."""
from __future__ import annotations

import json
import time

import pytest

from builder.errors import InputError
from builder.fetch.errors import HALT, PERMANENT, TRANSIENT, classify_exception, classify_message
from builder.fetch.options import FetchOptions, build_url, check_template
from builder.fetch.quota import FAILED, GONE, OK, build_plans, pending_clips, resolve, walk
from builder.fetch.rate import NodeRateLimiter
from builder.fetch.stage import FetchSummary, validate_rows
from builder.io.status_log import StatusLog
from builder.manifest.ids import InvalidYtidError
from support.media import manifest_rows, ytid_for


def plan_of(selected: int, reserve: int):
    entries = [(ytid_for(i), "A", i < selected, i) for i in range(selected + reserve)]
    manifest = manifest_rows(entries)
    return build_plans(manifest)["A"], manifest["clip_id"].tolist()


def test_walk_fills_from_reserve_in_rank_order():
    plan, ids = plan_of(3, 3)
    assert plan.cap == 3 and plan.order == ids
    states = {ids[0]: OK, ids[1]: GONE, ids[2]: OK}
    w = walk(plan, states.get)
    assert w.chosen == [ids[0], ids[2]] and w.pending == [ids[3]]      # the first reserve clip is tried next
    states[ids[3]] = GONE
    states[ids[4]] = OK
    w = walk(plan, states.get)
    assert w.chosen == [ids[0], ids[2], ids[4]] and w.pending == []
    assert w.replaced_by == {ids[1]: ids[4]}
    assert w.passed == [ids[1], ids[3]]


def test_walk_is_a_function_of_availability_only():
    plan, ids = plan_of(2, 4)
    availability = {ids[0]: GONE, ids[1]: OK, ids[2]: FAILED, ids[3]: OK, ids[4]: OK, ids[5]: OK}
    # Whatever order the answers arrived in, the result is the same.
    first = walk(plan, availability.get)
    shuffled = dict(reversed(list(availability.items())))
    assert walk(plan, shuffled.get) == first
    assert first.chosen == [ids[1], ids[3]] and first.replaced_by == {ids[0]: ids[3]}


def test_a_retried_clip_that_comes_back_takes_its_place_back():
    plan, ids = plan_of(2, 2)
    run1 = {ids[0]: OK, ids[1]: FAILED, ids[2]: OK}
    assert walk(plan, run1.get).chosen == [ids[0], ids[2]]
    run2 = {ids[0]: OK, ids[1]: OK, ids[2]: OK}           # the transient failure succeeded on rerun
    w = walk(plan, run2.get)
    assert w.chosen == [ids[0], ids[1]] and w.replaced_by == {}


def test_plans_respect_rank_not_row_order_and_no_fill():
    entries = [(ytid_for(i), "A", i < 2, rank) for i, rank in enumerate([1, 0, 3, 2])]
    manifest = manifest_rows(entries).iloc[::-1]
    plan = build_plans(manifest)["A"]
    ids = manifest_rows(entries)["clip_id"].tolist()
    assert plan.order == [ids[1], ids[0], ids[3], ids[2]]
    assert build_plans(manifest, fill=False)["A"].order == [ids[1], ids[0]]
    assert build_plans(manifest, cap=1)["A"].cap == 1
    walks = resolve(build_plans(manifest), {}.get)
    assert pending_clips(walks) == [ids[1], ids[0]]


@pytest.mark.parametrize("message, status, kind, error_class", [
    ("ERROR: [youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser", None, HALT, "bot_check"),
    ("ERROR: [youtube] abc: Sign in to confirm your age", None, PERMANENT, "age_restricted"),
    ("ERROR: [youtube] abc: Private video. Sign in if you've been granted access", None, PERMANENT, "private"),
    ("ERROR: [youtube] abc: Video unavailable", None, PERMANENT, "unavailable"),
    ("ERROR: [youtube] abc: Video unavailable. This video has been removed by the uploader", None, PERMANENT,
     "removed"),
    ("This video is no longer available because the YouTube account associated with this video has been terminated.",
     None, PERMANENT, "terminated"),
    ("Unable to download webpage: HTTP Error 404: Not Found", 404, PERMANENT, "not_found"),
    ("HTTP Error 503: Service Unavailable", 503, TRANSIENT, "http_5xx"),
    ("HTTP Error 429: Too Many Requests", 429, TRANSIENT, "http_429"),
    ("HTTP Error 403: Forbidden", 403, TRANSIENT, "http_403"),
    ("Read timed out. (read timeout=2.0)", None, TRANSIENT, "timeout"),
    ("Connection reset by peer", None, TRANSIENT, "connection"),
    ("ffmpeg exited with code 1", None, TRANSIENT, "download_failed"),
    ("something nobody has seen", None, TRANSIENT, "error"),
])
def test_classify_message(message, status, kind, error_class):
    failure = classify_message(message, status)
    assert (failure.kind, failure.error_class) == (kind, error_class)


def test_classify_403_with_bot_page_halts_and_walks_yt_dlp_chain():
    assert classify_message("HTTP Error 403: Forbidden", 403, page_text="<h1>Are you a robot?</h1>").kind == HALT
    from yt_dlp.utils import DownloadError, ExtractorError
    inner = ExtractorError("Private video", expected=True)
    outer = DownloadError("ERROR: [youtube] x: Private video", (type(inner), inner, None))
    assert classify_exception(outer).error_class == "private"


def test_status_log_is_append_only_and_survives_a_torn_line(tmp_path):
    log = StatusLog(tmp_path / "s.jsonl")
    log.append({"clip_id": "a", "status": "retry"})
    log.append({"clip_id": "a", "status": "ok", "bytes": 5})
    log.append({"clip_id": "b", "status": "unavailable"})
    with open(log.path, "ab") as handle:            # a writer killed mid-line
        handle.write(b'{"clip_id": "c", "sta')
    read = log.read()
    assert [r["status"] for r in read.records] == ["retry", "ok", "unavailable"]
    assert read.skipped_lines == [4]
    assert log.latest()["a"]["bytes"] == 5 and "time" in log.latest()["a"]
    with pytest.raises(ValueError):
        log.append({"status": "ok"})


def test_rate_limiter_paces_and_detects_429_bursts(tmp_path):
    limiter = NodeRateLimiter("host", max_rate=20.0, burst_429=3, burst_window=60, state_dir=tmp_path)
    start = time.time()
    for _ in range(6):
        limiter.wait_turn()
    assert time.time() - start >= 0.24               # 6 starts at 20/s: slots 0, 50, ..., 250 ms
    other = NodeRateLimiter("host", max_rate=20.0, state_dir=tmp_path)  # another process, same node and host
    assert other.path == limiter.path
    assert limiter.record_429() is False and limiter.record_429() is False
    limiter.record_success()                         # a success in between: not a burst
    assert limiter.record_429() is False and other.record_429() is False
    assert limiter.record_429() is True
    state = json.loads(limiter.path.read_text())
    assert len(state["recent_429"]) == 3


@pytest.mark.parametrize("bad", ["../../x", "-o/etc/x", "AAAAAAAAAAAA", "abc", "a b c d e f", "", "x" * 10 + "/"])
def test_malformed_ytids_never_reach_a_url_or_path(bad):
    with pytest.raises(InvalidYtidError):
        build_url("http://host/{ytid}.mp4", bad, f"{bad}_0")
    rows = manifest_rows([(ytid_for(0), "A", True, 0)])
    rows.loc[0, "ytid"] = bad
    rows.loc[0, "clip_id"] = f"{bad}_0"
    with pytest.raises(InputError) as err:
        validate_rows(rows, "m.csv")
    assert err.value.field == "ytid" and err.value.line == 2 and "m.csv" in str(err.value)


def test_url_templates_are_checked(tmp_path):
    assert build_url("http://h/{ytid}.mp4?c={clip_id}", "abcdefghijk", "abcdefghijk_1000") == \
        "http://h/abcdefghijk.mp4?c=abcdefghijk_1000"
    for bad in ("http://h/{0.__class__}", "http://h/{ytid}{x}", "no-scheme/{ytid}", "http://h/fixed.mp4"):
        with pytest.raises(InputError):
            check_template(bad)
    with pytest.raises(InputError, match="SOCKS"):
        FetchOptions(root=tmp_path, proxy="socks5://127.0.0.1:1080")
    with pytest.raises(InputError, match="cookies file not found"):
        FetchOptions(root=tmp_path, cookies=tmp_path / "missing.txt")
    rows = manifest_rows([(ytid_for(0), "A", True, 0)])
    rows.loc[0, "clip_id"] = ytid_for(1) + "_0"            # a clip ID of another video
    with pytest.raises(InputError, match="does not belong"):
        validate_rows(rows)


def test_summary_table_counts():
    summary = FetchSummary(per_class={"A": {"target": 2, "ok": 2, "unavailable": 1, "failed": 0, "pending": 0,
                                            "replaced": 1}},
                           failures={"not_found": 1})
    table = summary.table()
    assert "66.7" in table and "TOTAL" in table and "not_found 1" in table


def test_status_log_appends_after_a_torn_line_stay_readable(tmp_path):
    log = StatusLog(tmp_path / "s.jsonl")
    log.append({"clip_id": "a", "status": "ok"})
    with open(log.path, "ab") as handle:
        handle.write(b'{"clip_id": "b", "st')        # killed mid-write
    log.append({"clip_id": "c", "status": "ok"})
    read = log.read()
    assert [r["clip_id"] for r in read.records] == ["a", "c"] and read.skipped_lines == [2]


def test_backoff_is_exponential_capped_jittered_and_honours_retry_after():
    from builder.fetch.ytdlp import backoff_delay
    assert [backoff_delay(a, 2.0, 120.0, None, 0.0) for a in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(10, 2.0, 120.0, None, 0.0) == 120.0
    assert backoff_delay(1, 2.0, 120.0, None, 0.5) == 3.0
    assert backoff_delay(1, 2.0, 120.0, 30.0, 0.0) == 30.0
    assert backoff_delay(1, 2.0, 120.0, 9999.0, 0.0) == 120.0
