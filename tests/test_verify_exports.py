"""verify on each of our export kinds: unchanged exports pass, one altered file in each is caught and named.

Also: the official layout has no place for the gzsl preset's val_unseen clips, and verify says so instead of
calling them missing; a clip an export holds that the release does not is a finding of the export.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from builder.commands.main import main
from builder.demo.synthetic_release import (
    clip_seed,
    render_frame,
    source_audio,
    write_jpeg,
    write_wav,
)
from builder.export.stage import ExportOptions, export
from builder.io.tarball import write_tar
from builder.manifest.schema import read_manifest, write_manifest
from builder.release.verify import VerifyOptions, verify

KINDS = {"llinet": "llinet-export", "webdataset": "webdataset-export", "hf": "hf-export"}


@pytest.fixture(scope="module")
def exports(built, tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    manifest = read_manifest(built.manifest_path)
    for fmt in KINDS:
        export(manifest, ExportOptions(root=built.root, out=base / fmt, format=fmt, annotations=built.annotations,
                                       shard_size=4, progress=False))
    return base


@pytest.fixture
def copy_of(exports, tmp_path):
    def make(fmt: str):
        dest = tmp_path / fmt
        shutil.copytree(exports / fmt, dest)
        return dest
    return make


def run(release, data):
    return verify(VerifyOptions(release=release, data=data, progress=False))


def cli(release, data, *extra) -> list[str]:
    return ["verify", "--release", str(release), "--root", str(data), "--no-progress", *extra]


def by_id(report) -> dict[str, dict]:
    return {c["clip_id"]: c for c in report.clips}


def fields(clip: dict) -> set[tuple[str, str]]:
    return {(f["role"], f["field"]) for f in clip["findings"]}


def released(release) -> pd.DataFrame:
    ids = pd.read_csv(release / "clips.csv", dtype=str, keep_default_na=False)
    return ids[ids["released"] == "1"]


@pytest.mark.parametrize("fmt", list(KINDS))
def test_unchanged_exports_pass(release, exports, fmt, capsys):
    report = run(release, exports / fmt)
    assert report.layout == KINDS[fmt]
    assert report.counts() == {"identical": 14, "equivalent": 0, "different": 0, "missing": 0}
    assert not report.export_findings and not report.not_in_layout
    assert main(cli(release, exports / fmt)) == 0
    assert f"verify ({KINDS[fmt]}, release 1.0.0): PASSED" in capsys.readouterr().out


def test_altered_media_root_file(release, built, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(built.root, root)
    clip_id = released(release)["clip_id"].iloc[2]
    full = root / "frames_full" / f"{clip_id}.jpg"
    write_jpeg(full, render_frame(clip_seed(clip_id) + 1, 1.5, 128, 96))     # another video's frame, same format
    clip = by_id(run(release, root))[clip_id]
    assert clip["status"] == "different" and clip["files"]["frame_full"] == f"frames_full/{clip_id}.jpg"
    assert fields(clip) == {("frame_full", "frame_correlation"), ("frame_full", "frame_mad")}


def test_altered_official_export_files(release, copy_of, capsys):
    out = copy_of("llinet")
    index = pd.read_csv(out / "export_index.csv", dtype=str, keep_default_na=False)
    test_row = index[(index["split"] == "test") & (index["segment"] != "")].iloc[0]
    full = out / "traindata" / test_row["image_without_seg"]
    other = out / "traindata" / index[index["split"] == "test"].iloc[-1]["image_without_seg"]
    shutil.copyfile(other, full)                                   # another clip's full frame
    segment = out / "traindata" / test_row["segment"]
    from PIL import Image
    with Image.open(segment) as image:
        flipped = Image.eval(image.convert("L"), lambda v: 255 - v)
    flipped.save(segment, quality=100)
    report = run(release, out)
    clip = by_id(report)[test_row["clip_id"]]
    assert clip["status"] == "different"
    assert ("frame_full", "frame_correlation") in fields(clip) and ("mask", "pixels") in fields(clip)
    altered = {f["file"] for f in report.export_findings}
    assert {f"traindata/{test_row['image_without_seg']}", f"traindata/{test_row['segment']}"} <= altered
    # the index pickles are covered by the export's checksums too
    pickle_path = out / "traindata" / "train_class_ids.pickle"
    pickle_path.write_bytes(pickle_path.read_bytes()[:-2] + b"\x01.")
    report = run(release, out)
    assert "traindata/train_class_ids.pickle" in {f["file"] for f in report.export_findings}
    assert main(cli(release, out)) == 1
    assert "export    traindata/train_class_ids.pickle: bytes differ" in capsys.readouterr().out


def _rewrite_shard(path, edit) -> None:
    members = []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            members.append((member.name, archive.extractfile(member).read()))
    write_tar(path, [edit(name, data) for name, data in members])


def test_altered_webdataset_shard(release, copy_of, tmp_path):
    out = copy_of("webdataset")
    listing = json.loads((out / "shards.json").read_text())
    shard = out / next(s["path"] for s in listing["shards"] if s["split"] == "test")
    with tarfile.open(shard) as archive:
        keys = sorted({m.name.split(".", 1)[0] for m in archive.getmembers()})
    resampled, unmasked = keys[0], keys[1]
    write_wav(tmp_path / "r.wav", source_audio(clip_seed(resampled), 3.0, 22050), 22050)

    def edit(name, data):
        if name == f"{resampled}.wav":
            return name, (tmp_path / "r.wav").read_bytes()
        if name == f"{unmasked}.cls":
            return name, b"3"                                    # another class's index
        return name, data
    _rewrite_shard(shard, edit)
    report = run(release, out)
    clips = by_id(report)
    assert clips[resampled]["status"] == "different"
    assert ("audio", "sample_rate") in fields(clips[resampled])
    assert ("labels", "cls") in fields(clips[unmasked])
    assert {f["file"] for f in report.export_findings} == {str(shard.relative_to(out))}


def test_webdataset_missing_member_and_foreign_clip(release, copy_of):
    out = copy_of("webdataset")
    listing = json.loads((out / "shards.json").read_text())
    shard = out / listing["shards"][0]["path"]
    with tarfile.open(shard) as archive:
        names = [m.name for m in archive.getmembers()]
    key = names[0].split(".", 1)[0]
    members = []
    with tarfile.open(shard) as archive:
        for member in archive.getmembers():
            if member.name != f"{key}.jpg":
                members.append((member.name, archive.extractfile(member).read()))
    members.append(("zzzzzzzzzzz_0.json", b"{}"))
    write_tar(shard, members)
    report = run(release, out)
    clip = by_id(report)[key]
    assert clip["status"] == "missing" and clip["missing_files"] == [f"{listing['shards'][0]['path']}:{key}.jpg"]
    assert any("zzzzzzzzzzz_0 is not released" in f["message"] for f in report.export_findings)


def test_altered_hf_parquet(release, copy_of):
    out = copy_of("hf")
    path = sorted((out / "data").glob("train-*.parquet"))[0]
    parquet = pq.ParquetFile(path)
    table = parquet.read()
    rows = table.to_pylist()
    victim = rows[0]["clip_id"]
    wav = io.BytesIO()
    import soundfile
    soundfile.write(wav, source_audio(clip_seed(victim), 3.0, 16000, channels=1), 16000, format="WAV",
                    subtype="PCM_16")
    rows[0]["audio"] = {"bytes": wav.getvalue(), "path": rows[0]["audio"]["path"]}
    pq.write_table(pa.Table.from_pylist(rows, schema=parquet.schema_arrow), path)
    report = run(release, out)
    clip = by_id(report)[victim]
    assert clip["status"] == "different"
    assert ("audio", "channels") in fields(clip)
    assert {f["file"] for f in report.export_findings} == {path.relative_to(out).as_posix()}


def test_gzsl_val_unseen_has_no_place_in_the_official_layout(built, tmp_path, capsys):
    """A gzsl build (one class held out as val_unseen): the official export leaves it out, verify says so."""
    root = tmp_path / "gzsl"
    shutil.copytree(built.root, root)
    manifest = read_manifest(root / "manifest.csv")
    manifest.loc[manifest["class"] == "Piano", "split"] = "val_unseen"
    write_manifest(manifest, root / "manifest.csv")
    rel = tmp_path / "rel"
    assert main(["release", "--version", "1.0.0", "--root", str(root), "--date", "2026-02-01", "--no-progress",
                 "--out", str(rel)]) == 0
    out = tmp_path / "official"
    assert main(["export", "--root", str(root), "--layout", "llinet", "--no-progress", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(cli(rel, out, "--report", str(tmp_path / "v.json"))) == 0
    printed = capsys.readouterr().out
    assert "not checked: 3 val_unseen clip(s) -- the llinet-export has no place for split val_unseen" in printed
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["not_in_layout"] == {"val_unseen": 3} and report["counts"]["missing"] == 0
    assert report["counts"]["identical"] == 11 and report["passed"] is True
    # the WebDataset export holds every split: all 14 are checked there
    wds = tmp_path / "wds"
    assert main(["export", "--root", str(root), "--format", "webdataset", "--no-progress", "--out", str(wds)]) == 0
    assert run(rel, wds).counts()["identical"] == 14


def test_a_release_made_before_formats_were_recorded(release, exports, tmp_path):
    """Older ID manifests have no format columns: verify still checks bytes, decoding, content and masks."""
    import hashlib

    from builder.release.id_manifest import AUDIO_FORMAT_COLUMNS, FRAME_FORMAT_COLUMNS, FULL_FORMAT_COLUMNS

    old = tmp_path / "old"
    shutil.copytree(release, old)
    ids = pd.read_csv(old / "clips.csv", dtype=str, keep_default_na=False)
    ids.drop(columns=[*AUDIO_FORMAT_COLUMNS, *FRAME_FORMAT_COLUMNS, *FULL_FORMAT_COLUMNS]).to_csv(
        old / "clips.csv", index=False, lineterminator="\n")
    listed = [line.split("  ", 1)[1] for line in (old / "SHA256SUMS").read_text().splitlines()]
    (old / "SHA256SUMS").write_text("".join(f"{hashlib.sha256((old / n).read_bytes()).hexdigest()}  {n}\n"
                                            for n in listed))
    report = run(old, exports / "webdataset")
    assert report.counts()["identical"] == 14 and any("records no file formats" in n for n in report.notes)
