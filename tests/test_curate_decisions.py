"""The curation decision CSV: parsing, every malformed case, duplicates/conflicts, locked atomic writers."""
from __future__ import annotations

import multiprocessing

import pytest

from builder.curate.decisions import (
    DECISION_COLUMNS,
    Decision,
    make_decision,
    parse_decisions,
    read_decisions,
    record_decision,
    remove_decision,
    write_decisions,
)
from builder.errors import InputError

A, B, C = "aaaaaaaaaaa_0", "bbbbbbbbbbb_30000", "ccccccccccc_5000"
HEADER = "clip_id,decision,reason,reviewer,time\n"


def write(tmp_path, text, name="decisions.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        read_decisions(path, **kwargs)
    return info.value


def test_reads_valid_file_with_bom_quotes_and_any_column_order(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(("\ufeffreviewer,clip_id,decision,reason\n"
                      f'ana,{A},accept,\n'
                      f'ben,{B},reject,"no instrument, only a poster"\n'
                      "\n").encode())
    got = read_decisions(path, known_clips=[A, B, C])
    assert set(got) == {A, B}
    assert got[A].decision == "accept" and got[A].reviewer == "ana" and got[A].time == ""
    assert got[B].reason == "no instrument, only a poster" and got[B].line == 3
    assert [(d.clip_id, d.line) for d in parse_decisions(path)] == [(A, 2), (B, 3)]   # blank line skipped


def test_time_column_is_checked_as_iso8601(tmp_path):
    ok = write(tmp_path, HEADER + f"{A},accept,,ana,2026-05-09T10:00:00+00:00\n{B},accept,,ana,\n")
    assert read_decisions(ok)[A].time == "2026-05-09T10:00:00+00:00"
    bad = write(tmp_path, HEADER + f"{A},accept,,ana,yesterday\n", "bad.csv")
    err = error_of(bad)
    assert (err.line, err.field) == (2, "time") and "ISO 8601" in str(err)


@pytest.mark.parametrize("body, line, field, words", [
    (f"{A},maybe,,ana,\n", 2, "decision", "accept"),
    (f"{A},Accept,,ana,\n", 2, "decision", "accept"),
    (f"{A},reject,,ana,\n", 2, "reason", "needs a reason"),
    (f"{A},accept,,,\n", 2, "reviewer", "reviewer"),
    ("not-a-clip,accept,,ana,\n", 2, "clip_id", "invalid clip ID"),
    (f"{A},accept,,ana,\n{B},accept,ana\n", 3, None, "expected 5 fields"),
])
def test_malformed_rows_name_line_and_field(tmp_path, body, line, field, words):
    err = error_of(write(tmp_path, HEADER + body))
    assert err.line == line and err.field == field and words in str(err)
    assert str(tmp_path / "decisions.csv") in str(err)


@pytest.mark.parametrize("header", ["clip_id,decision,reviewer\n", "clip_id,decision,reason,reviewer,note\n",
                                    "clip_id,decision,reason,reviewer,reviewer\n", ""])
def test_bad_header_is_line_1(tmp_path, header):
    err = error_of(write(tmp_path, header + (f"{A},accept,,ana\n" if header else "")))
    assert err.line == 1


def test_unterminated_quote_is_a_clear_error(tmp_path):
    err = error_of(write(tmp_path, HEADER + f'{A},reject,"never closed,ana,\n'))
    assert "malformed CSV" in str(err)


def test_unknown_clip_names_line(tmp_path):
    err = error_of(write(tmp_path, HEADER + f"{A},accept,,ana,\n{C},accept,,ana,\n"), known_clips=[A, B])
    assert err.line == 3 and err.field == "clip_id" and "unknown clip" in str(err)


@pytest.mark.parametrize("second, kind", [
    (f"{A},accept,,ana,\n", "exact duplicate"),
    (f"{A},reject,blurry,ben,\n", "conflicting decision"),
    (f"{A},accept,,ben,\n", "repeated decision"),
])
def test_second_row_for_a_clip_names_both_lines(tmp_path, second, kind):
    path = write(tmp_path, HEADER + f"{A},accept,,ana,\n{B},accept,,ana,\n" + second)
    err = error_of(path)
    assert kind in str(err) and "lines 2 and 4" in str(err) and err.line == 4


def test_latest_wins_takes_the_last_row(tmp_path):
    path = write(tmp_path, HEADER + f"{A},accept,,ana,\n{A},reject,blurry,ben,\n{A},reject,cut,ana,\n")
    got = read_decisions(path, latest_wins=True)
    assert got[A].reason == "cut" and got[A].line == 4


def test_record_decision_upserts_and_remove_deletes(tmp_path):
    path = tmp_path / "sub" / "decisions.csv"
    record_decision(path, make_decision(A, "accept", reviewer="ana", time="2026-01-01T00:00:00"))
    record_decision(path, make_decision(B, "reject", "no instrument", "ana"))
    rows = record_decision(path, make_decision(A, "reject", "dubbed audio", "ana"))
    assert [r.clip_id for r in rows] == [B, A]
    got = read_decisions(path)            # valid without --latest-wins: one row per clip
    assert got[A].decision == "reject" and got[A].time  # time filled in (now)
    assert path.read_text().splitlines()[0] == ",".join(DECISION_COLUMNS)
    assert remove_decision(path, A) is True and remove_decision(path, A) is False
    assert set(read_decisions(path)) == {B}


def test_writers_refuse_invalid_decisions_and_keep_the_file(tmp_path):
    path = write(tmp_path, HEADER + f"{A},accept,,ana,\n")
    before = path.read_bytes()
    with pytest.raises(InputError):
        record_decision(path, Decision(B, "reject", "", "ana"))
    with pytest.raises(InputError):
        write_decisions(path, [Decision(B, "yes", "", "ana")])
    assert path.read_bytes() == before
    broken = write(tmp_path, HEADER + f"{A},maybe,,ana,\n", "broken.csv")
    before = broken.read_bytes()
    with pytest.raises(InputError):   # never overwrite a file it cannot read
        record_decision(broken, make_decision(B, "accept", reviewer="ana"))
    assert broken.read_bytes() == before


def _writer(path, prefix, count):
    for i in range(count):
        record_decision(path, make_decision(f"{prefix * 11}_{i}", "accept", reviewer=prefix))


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "decisions.csv"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(path, p, 15)) for p in "xyz"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert all(w.exitcode == 0 for w in workers)
    got = read_decisions(path)
    assert len(got) == 45 and {d.reviewer for d in got.values()} == {"x", "y", "z"}
    assert not list(tmp_path.glob(".decisions.csv.*.tmp"))
