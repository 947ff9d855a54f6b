"""Bad manifests given to fetch, trim and frames: exit 2, one line naming file, line and field, and a
media root whose every file is byte-identical afterwards."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from builder.commands.main import main
from builder.errors import InputError
from builder.fetch.options import FetchOptions
from builder.fetch.stage import fetch, validate_rows
from builder.manifest.schema import COLUMNS, read_manifest, write_manifest, write_manifest_dir
from support.media import media_manifest
from support.tree import tree_digest

SCHEMA = [c.name for c in COLUMNS]
# Never contacted: every case below must stop before the first request.
DEAD_MIRROR = "http://127.0.0.1:9/v/{ytid}.mp4"


@pytest.fixture(scope="module")
def template(tmp_path_factory, media):
    """A media root after fetch + trim + frames (3 clips), and the manifest folder it was fetched from."""
    base = tmp_path_factory.mktemp("bad-manifests")
    root = base / "root"
    manifest = media_manifest(root, media, ["h264_aac", "h264_aac", "h264_aac"])
    write_manifest(manifest, root / "manifest.csv")
    for stage in ("trim", "frames"):
        assert main([stage, "--root", str(root), "--no-progress"]) == 0
    write_manifest_dir(manifest[SCHEMA], base / "input")
    return base


@pytest.fixture()
def work(template, tmp_path):
    shutil.copytree(template / "root", tmp_path / "root")
    shutil.copytree(template / "input", tmp_path / "input")
    return tmp_path


def edit_csv(path, row, **values):
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column, value in values.items():
        df.loc[row, column] = value
    df.to_csv(path, index=False)


def fetch_argv(work, *extra):
    return ["fetch", "--manifest-dir", str(work / "input"), "--root", str(work / "root"),
            "--url-template", DEAD_MIRROR, "--workers", "1", "--no-progress", *extra]


def run_refused(argv, root, capsys, expected):
    """Exit 2, one line on stderr containing ``expected``, and no byte under ``root`` changed."""
    capsys.readouterr()
    before = tree_digest(root)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert expected in err, err
    assert tree_digest(root) == before
    return err


def test_the_template_root_is_complete(template):
    out = read_manifest(template / "root" / "manifest.csv")
    assert (out["trim_status"] == "ok").all() and (out["frames_status"] == "ok").all()


@pytest.mark.parametrize("name", ["clips.csv", "reserve.csv"])
def test_fetch_refuses_an_empty_input_file(work, capsys, name):
    path = work / "input" / name
    path.write_bytes(b"")
    run_refused(fetch_argv(work), work / "root", capsys, f"{path}, line 1, field 'clip_id': empty file (0 bytes)")


@pytest.mark.parametrize("stage", ["fetch", "trim", "frames"])
def test_every_stage_refuses_an_empty_root_manifest(work, capsys, stage):
    path = work / "root" / "manifest.csv"
    path.write_bytes(b"")
    argv = fetch_argv(work) if stage == "fetch" else [stage, "--root", str(work / "root"), "--no-progress"]
    err = run_refused(argv, work / "root", capsys, f"{path}, line 1, field 'clip_id': empty file (0 bytes)")
    assert ("--allow-drop-rows" in err) == (stage == "fetch")      # fetch only reads it to overwrite it


def test_fetch_refuses_a_header_only_input(work, capsys):
    clips = work / "input" / "clips.csv"
    clips.write_text(clips.read_text().splitlines()[0] + "\n")
    run_refused(fetch_argv(work), work / "root", capsys,
                f"{clips}, line 2, field 'clip_id': no clip rows, only a header")


def test_fetch_refuses_to_drop_rows_of_the_existing_manifest_unless_told(work, capsys):
    clips = work / "input" / "clips.csv"
    lines = clips.read_text().splitlines(keepends=True)
    dropped = lines[3].split(",")[0]
    clips.write_text("".join(lines[:3]))                  # the third clip is left out
    target = work / "root" / "manifest.csv"
    err = run_refused(fetch_argv(work), work / "root", capsys,
                      f"{target}, line 4, field 'clip_id': clip {dropped!r} of the existing manifest")
    assert "--allow-drop-rows" in err
    # Said explicitly: the two remaining clips' files are adopted (checked, no request) and the row is dropped.
    assert main(fetch_argv(work, "--allow-drop-rows")) == 0
    out = read_manifest(target)
    assert len(out) == 2 and dropped not in set(out["clip_id"]) and set(out["fetch_status"]) == {"ok"}


@pytest.mark.parametrize("values,field,message", [
    ({"start": "-5", "end": "5"}, "start", "must be >= 0 seconds"),
    ({"start": "nan"}, "start", "expected a finite number of seconds"),
    ({"end": "NaN"}, "end", "expected a finite number of seconds"),
    ({"start": ""}, "start", "expected float"),
    ({"end": ""}, "end", "expected float"),
    ({"end": "20"}, "end", "segment is 20.000 s long"),
    ({"start": "1.5"}, "clip_id", "clip ID 'm0000000001_0' does not match its ytid 'm0000000001' and start 1.500"),
])
@pytest.mark.parametrize("stage", ["fetch", "trim", "frames"])
def test_bad_segment_rows(work, capsys, stage, values, field, message):
    """The second data row (line 3) is bad; fetch reads it from clips.csv, trim and frames from the root."""
    path = work / "input" / "clips.csv" if stage == "fetch" else work / "root" / "manifest.csv"
    edit_csv(path, 1, **values)
    argv = fetch_argv(work) if stage == "fetch" else [stage, "--root", str(work / "root"), "--no-progress"]
    run_refused(argv, work / "root", capsys, f"{path}, line 3, field '{field}': {message}")


def test_fetch_library_checks_the_same_rows(tmp_path, media):
    """Called as a library (a DataFrame, not a file): the same checks, before the media root exists."""
    manifest = media_manifest(tmp_path / "src", media, ["h264_aac", "h264_aac"])[SCHEMA]
    root = tmp_path / "root"
    options = FetchOptions(root=root, url_template=DEAD_MIRROR, progress=False, rate_state_dir=tmp_path / "rate")
    for values, field in (({"start": -5.0, "end": 5.0}, "start"), ({"end": float("nan")}, "end"),
                          ({"end": None}, "end"), ({"clip_id": manifest.loc[1, "ytid"] + "_7"}, "clip_id"),
                          ({"end": 10.6}, "end")):
        bad = manifest.copy()
        for column, value in values.items():
            bad[column] = bad[column].astype(object)
            bad.loc[1, column] = value
        with pytest.raises(InputError) as err:
            fetch(bad, options, source="rows")
        assert (err.value.file, err.value.line, err.value.field) == ("rows", 3, field)
        assert not root.exists()
    # Within the tolerance of AudioSet's 10 s, and shorter segments (a video that ends early), are fine.
    fine = manifest.copy()
    fine["end"] = [10.4, 6.0]
    validate_rows(fine)
