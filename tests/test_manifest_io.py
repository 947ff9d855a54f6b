"""Manifest schema I/O, YouTube ID validation, atomic writes, and select/split from the CLI."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from builder.commands.main import main
from builder.errors import InputError
from builder.io.atomic import atomic_open, atomic_write_text
from builder.manifest.ids import InvalidYtidError, make_clip_id, validate_clip_id, validate_ytid
from builder.manifest.schema import read_manifest, write_manifest
from builder_helpers import MID, classes_csv, row, write_segments, ytid


@pytest.mark.parametrize("bad", ["../../x", "-o/etc/x", "abcdefghijkl", "abc", "abcdefghij!", "", None, "a b c d e f"])
def test_malformed_ytids_refused(bad):
    with pytest.raises(InvalidYtidError):
        validate_ytid(bad)
    with pytest.raises(InvalidYtidError):
        make_clip_id(bad, 0.0)


def test_clip_ids():
    assert make_clip_id("--PJHxphWEs", 30.0) == "--PJHxphWEs_30000"
    assert validate_clip_id("--PJHxphWEs_30000") == "--PJHxphWEs_30000"
    with pytest.raises(InvalidYtidError):
        validate_clip_id("../../x_0")


def manifest_frame() -> pd.DataFrame:
    return pd.DataFrame({"clip_id": [f"{ytid(1)}_0", f"{ytid(2)}_1500"], "ytid": [ytid(1), ytid(2)],
                         "start": [0.0, 1.5], "end": [10.0, 11.5], "class": ["Guitar", "Tabla"],
                         "mid": [MID["Guitar"], MID["Tabla"]], "split": ["train", "test"],
                         "source": ["eval", "eval"], "labels": [MID["Guitar"], f"{MID['Tabla']},{MID['Speech']}"],
                         "rank": [0, 3], "selected": [True, False], "extra_b": ["x", "y"], "extra_a": [1, 2]})


def test_round_trip_and_canonical_order(tmp_path):
    path = write_manifest(manifest_frame(), tmp_path / "m.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["clip_id", "ytid", "start"] and header[-2:] == ["extra_a", "extra_b"]
    assert '"/m/01p970,/m/09x0r"' in path.read_text() and "1.500" in path.read_text()
    back = read_manifest(path)
    assert back["selected"].tolist() == [True, False] and back["rank"].tolist() == [0, 3]
    assert back["start"].tolist() == [0.0, 1.5]
    assert oct(os.stat(path).st_mode & 0o777) != "0o600"


@pytest.mark.parametrize("column,value,message", [
    ("ytid", "../../etc/pw", "invalid YouTube ID"),
    ("clip_id", "nope", "invalid clip ID"),
    ("start", "ten", "expected float"),
    ("rank", "1.5", "expected int"),
    ("selected", "maybe", "expected bool"),
    ("end", "0.5", "end must be greater than start"),
])
def test_bad_manifest_values_name_line_and_field(tmp_path, column, value, message):
    path = write_manifest(manifest_frame(), tmp_path / "m.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[1, column] = value
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=message) as err:
        read_manifest(path)
    assert err.value.line == 3 and err.value.field == column


def test_missing_columns_and_duplicates(tmp_path):
    df = manifest_frame()
    write_manifest(df.drop(columns=["labels"]), tmp_path / "a.csv")
    with pytest.raises(InputError, match=r"missing column\(s\) \['labels'\]"):
        read_manifest(tmp_path / "a.csv")
    write_manifest(pd.concat([df, df.iloc[:1]]), tmp_path / "b.csv")
    with pytest.raises(InputError, match="duplicate clip ID") as err:
        read_manifest(tmp_path / "b.csv")
    assert err.value.line == 4


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w") as handle:
            handle.write("half-written")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_select_cli_bad_rows_error_and_skip(tmp_path, audioset_ontology, capsys):
    (tmp_path / "as").mkdir()
    (tmp_path / "as" / "ontology.json").write_bytes(audioset_ontology.read_bytes())
    rows = [row(ytid(i), [MID["Guitar"]]) for i in range(3)] + [f'{ytid(7)}, 3.0, 1.0, "{MID["Tabla"]}"\n']
    for name in ("balanced_train_segments.csv", "eval_segments.csv", "unbalanced_train_segments.csv"):
        write_segments(tmp_path / "as" / name, rows if name.startswith("eval") else [row(ytid(50), [MID["Tabla"]])])
    classes = classes_csv(tmp_path / "classes.csv", ["Guitar"], ["Tabla"])
    args = ["select", "--classes", str(classes), "--audioset", str(tmp_path / "as"), "--out", str(tmp_path / "m")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "eval_segments.csv, line 7, field 'end_seconds'" in err
    assert not (tmp_path / "m").exists()  # nothing half-written
    assert main(args + ["--skip-bad-rows"]) == 0
    out = capsys.readouterr().out
    assert "1 bad rows skipped" in out and "line 7" in out
    assert main(["split", "--manifest-dir", str(tmp_path / "m"), "--classes", str(classes),
                 "--audioset", str(tmp_path / "as"), "--preset", "paper"]) == 0
    assert "audit: PASSED" in capsys.readouterr().out
    assert read_manifest(tmp_path / "m" / "clips.csv")["split"].tolist() == ["train"] * 3 + ["test"]
