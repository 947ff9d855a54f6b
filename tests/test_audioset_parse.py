"""Segment CSV and ontology parsing: both real formats and every bad-input case."""
from __future__ import annotations

import gzip

import pytest

from builder.audioset.parse import ParseStats, discover_segment_files, iter_segments, load_ontology
from builder.errors import InputError
from builder_helpers import EMPTY_HEADER, MID, row, write_segments, ytid


def test_google_format_and_real_balanced_file(real_audioset):
    segs = list(iter_segments(real_audioset / "balanced_train_segments.csv"))
    assert len(segs) == 22160  # the header's num_segs
    first = segs[0]
    assert (first.ytid, first.start, first.end, first.labels, first.line) == \
        ("--PJHxphWEs", 30.0, 40.0, ("/m/09x0r", "/t/dd00088"), 4)
    assert sum(len(s.labels) for s in segs) == 52882  # the header's num_positive_labels


def test_empty_lines_variant_of_real_unbalanced_part(real_audioset):
    part = real_audioset / "unbalanced_partial_csvs" / "unbalanced_train_segments_part00.csv"
    assert part.read_text().startswith("empty\nempty\nempty\n")
    segs = list(iter_segments(part))
    assert segs[0].ytid == "---1_cCGK4M" and segs[0].line == 4
    assert segs[0].labels == ("/m/01g50p", "/m/0284vy3", "/m/06d_3", "/m/07jdr", "/m/07rwm0c")


def test_crafted_both_headers_and_gzip(tmp_path):
    rows = [row(ytid(1), [MID["Guitar"]]), row(ytid(2), [MID["Drum"], MID["Speech"]], 5, 15)]
    a = list(iter_segments(write_segments(tmp_path / "g.csv", rows)))
    b = list(iter_segments(write_segments(tmp_path / "e.csv", rows, header=EMPTY_HEADER)))
    gz = tmp_path / "z.csv.gz"
    gz.write_bytes(gzip.compress((tmp_path / "g.csv").read_bytes()))
    c = list(iter_segments(gz))
    assert [s[:4] for s in a] == [s[:4] for s in b] == [s[:4] for s in c]
    assert a[1].labels == (MID["Drum"], MID["Speech"]) and a[1].start == 5.0


def test_discover_accepts_google_single_file_and_parts(real_audioset, tmp_path):
    found = discover_segment_files(real_audioset)
    assert len(found["unbalanced_train"]) == 41 and len(found["eval"]) == 1
    write_segments(tmp_path / "unbalanced_train_segments.csv", [row(ytid(1), [MID["Piano"]])])
    with pytest.raises(InputError, match="balanced_train_segments.csv"):
        discover_segment_files(tmp_path)
    assert discover_segment_files(tmp_path, ["unbalanced_train"])["unbalanced_train"] == \
        [tmp_path / "unbalanced_train_segments.csv"]


BAD_ROWS = [
    ("wrong field count", f"{ytid(9)}, 0.000, 10.000\n", "positive_labels", "expected 4 fields"),
    ("unquoted label list", f"{ytid(9)}, 0.000, 10.000, /m/0342h,/m/026t6\n", "positive_labels", "must be quoted"),
    ("non-numeric start", f'{ytid(9)}, zero, 10.000, "/m/0342h"\n', "start_seconds", "expected a number"),
    ("non-numeric end", f'{ytid(9)}, 0.000, 1O.000, "/m/0342h"\n', "end_seconds", "expected a number"),
    ("nan start", f'{ytid(9)}, nan, 10.000, "/m/0342h"\n', "start_seconds", "finite"),
    ("end before start", f'{ytid(9)}, 10.000, 10.000, "/m/0342h"\n', "end_seconds", "greater than"),
    ("short ytid", 'abc, 0.000, 10.000, "/m/0342h"\n', "YTID", "malformed YouTube ID"),
    ("path ytid", '../../etc/x, 0.000, 10.000, "/m/0342h"\n', "YTID", "malformed YouTube ID"),
    ("12-char ytid", f'{ytid(9)}x, 0.000, 10.000, "/m/0342h"\n', "YTID", "malformed YouTube ID"),
    ("unknown mid", f'{ytid(9)}, 0.000, 10.000, "/m/0342h,/m/notreal"\n', "positive_labels", "unknown label MID"),
    ("empty label", f'{ytid(9)}, 0.000, 10.000, "/m/0342h,"\n', "positive_labels", "empty label"),
]


@pytest.mark.parametrize("name,bad,field,message", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_names_file_line_field(tmp_path, audioset_ontology, name, bad, field, message):
    known = frozenset(load_ontology(audioset_ontology).entries)
    path = write_segments(tmp_path / "bad.csv", [row(ytid(1), [MID["Guitar"]]), bad, row(ytid(2), [MID["Drum"]])])
    with pytest.raises(InputError) as err:
        list(iter_segments(path, known_mids=known))
    assert err.value.file == str(path) and err.value.line == 5 and err.value.field == field
    assert message in str(err.value) and "line 5" in str(err.value)
    # --skip-bad-rows: the bad row is counted, the good ones survive.
    stats = ParseStats()
    good = list(iter_segments(path, known_mids=known, skip_bad_rows=True, stats=stats))
    assert [s.ytid for s in good] == [ytid(1), ytid(2)]
    assert stats.rows == 2 and stats.skipped == 1 and "line 5" in stats.examples[0]


def test_missing_files_are_clear(tmp_path):
    with pytest.raises(InputError, match="segment list not found"):
        list(iter_segments(tmp_path / "nope.csv"))
    with pytest.raises(InputError, match="ontology file not found"):
        load_ontology(tmp_path / "ontology.json")
    (tmp_path / "ontology.json").write_text('[{"id": "/m/x", "name": "X"},\n oops]')
    with pytest.raises(InputError, match="not valid JSON") as err:
        load_ontology(tmp_path / "ontology.json")
    assert err.value.line == 2


def test_empty_marker_after_data_is_a_bad_row(tmp_path):
    path = write_segments(tmp_path / "x.csv", [row(ytid(1), [MID["Guitar"]]), "empty\n"], header=EMPTY_HEADER)
    with pytest.raises(InputError, match="expected 4 fields") as err:
        list(iter_segments(path))
    assert err.value.line == 5


def test_ontology_structure(audioset_ontology):
    onto = load_ontology(audioset_ontology)
    assert len(onto.entries) == 632
    assert {MID["Electric guitar"], MID["Acoustic guitar"]} <= onto.descendants(MID["Guitar"])
    assert MID["Tabla"] in onto.descendants(MID["Drum"])
    assert MID["Wind chime"] in onto.descendants(MID["Chime"]) and MID["Chime"] in onto.descendants(MID["Bell"])
    assert any(path[-2:] == ["Guitar", "Electric guitar"] for path in onto.paths(MID["Electric guitar"]))
