"""release: ID manifest, checksums, stats, figure, provenance, Croissant (validated by mlcroissant), packing."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from builder.commands.main import main
from builder.demo.synthetic_release import make_dataset
from builder.errors import InputError
from builder.io.tarball import safe_extract
from builder.manifest.schema import read_manifest
from builder.release.build import ReleaseOptions, build_release
from builder.release.stats import BEGIN, END, update_release_stats
from support.release import release_of

DATE = "2026-02-01"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def release(built, tmp_path_factory):
    return release_of(built, tmp_path_factory.mktemp("releases") / "v1", DATE)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256sums_cover_every_released_file(release):
    lines = (release / "SHA256SUMS").read_text().splitlines()
    listed = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    on_disk = sorted(p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file())
    assert sorted(listed) == [p for p in on_disk if p != "SHA256SUMS"]
    assert [line.split("  ", 1)[1] for line in lines] == sorted(listed)
    assert all(sha(release / name) == digest for name, digest in listed.items())
    assert {"clips.csv", "annotations.json", "stats.json", "provenance.json", "croissant.json",
            "class_distribution.png", "fingerprints.npz", "media-1.0.0.tar"} == set(listed)


def test_id_manifest_records_every_decision(release, built):
    ids = pd.read_csv(release / "clips.csv", dtype=str, keep_default_na=False)
    assert list(ids.columns[:4]) == ["YTID", "start_seconds", "end_seconds", "positive_labels"]
    assert len(ids) == 20 and int((ids["released"] == "1").sum()) == 14
    rejected = ids[ids["curation"] == "rejected"].iloc[0]
    assert (rejected["released"], rejected["exclusion"], rejected["curation_reason"]) == \
        ("0", "curation rejected", "not solo playing")
    gone = ids[ids["availability"] == "unavailable"]
    assert len(gone) == 5 and set(gone["exclusion"]) == {"fetch unavailable"}
    assert all(ids["checked_at"].str.match(r"2026-01-0\dT12:00:00Z"))
    assert set(ids.loc[ids["released"] == "1", "has_mask"]) == {"0", "1"}
    assert set(ids.loc[ids["has_mask"] == "1", "split"]) == {"test"}
    first = ids[ids["released"] == "1"].iloc[0]
    assert first["audio_sha256"] == sha(built.root / first["audio_file"])
    assert (float(first["window_offset"]), float(first["frame_time"])) == (0.0, 1.5)


def test_stats_and_figure(release):
    stats = json.loads((release / "stats.json").read_text())
    assert stats["totals"] == {"released": 14, "classes": 5, "considered": 20, "masks": 6}
    assert stats["per_split"]["train"]["per_class"] == {"Accordion": 2, "Banjo": 3, "Piano": 3}
    assert stats["per_split"]["test"]["masks"] == 6
    assert stats["availability"]["available"] == 15 and stats["availability"]["unavailable"] == 5
    assert stats["availability"]["available_fraction_of_checked"] == 0.75
    assert stats["durations"]["audio_window_seconds"]["total"] == pytest.approx(42.0)
    assert stats["curation"]["rejected"] == 1 and stats["curation"]["auto_rejected"] == 5
    assert stats["per_class"]["Accordion"]["excluded"] == {"curation rejected": 1, "fetch unavailable": 1}
    with Image.open(release / "class_distribution.png") as image:
        assert image.format == "PNG" and image.size[0] > 400


def test_provenance_reads_what_the_stages_recorded(release):
    prov = json.loads((release / "provenance.json").read_text())
    assert prov["llinet_version"] and prov["tools"]["yt-dlp"]
    assert prov["tools"]["ffmpeg"].startswith("ffmpeg version")
    assert prov["stages"]["trim"]["params"] == [{"mono": False, "policy": "first", "sample_rate": 16000,
                                                 "silence_dbfs": -60.0, "window": 3.0}]
    assert prov["stages"]["frames"]["params"][0]["jpeg_quality"] == 95
    assert prov["stages"]["fetch"]["latest_status"] == {"ok": 15, "unavailable": 5}
    assert prov["release"]["version"] == "1.0.0" and prov["release"]["date"] == DATE
    assert prov["inputs"]["manifest"]["file"] == "manifest.csv"
    assert "/" not in json.dumps(prov["inputs"]).replace("\"/", "")  # no machine paths


def test_croissant_is_valid_and_readable_by_mlcroissant(release):
    import mlcroissant as mlc  # dev dependency (setup.cfg [dev])
    dataset = mlc.Dataset(str(release / "croissant.json"))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings
    records = list(dataset.records("clips"))
    assert len(records) == 20
    assert sum(r["clips/released"] for r in records) == 14
    doc = json.loads((release / "croissant.json").read_text())
    objects = {d["contentUrl"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    assert set(objects) >= {"clips.csv", "annotations.json", "stats.json", "media-1.0.0.tar"}
    assert all(sha(release / name) == item["sha256"] for name, item in objects.items())
    assert doc["version"] == "1.0.0" and doc["datePublished"] == DATE


def test_release_is_byte_reproducible(built, release, tmp_path):
    again = release_of(built, tmp_path / "again", DATE)
    assert (again / "SHA256SUMS").read_text() == (release / "SHA256SUMS").read_text()


def test_packed_media_extract_safely(release, built, tmp_path):
    names = safe_extract(release / "media-1.0.0.tar", tmp_path / "x")
    assert names == sorted(names) and len(names) == 14 * 3
    for name in names:
        assert (tmp_path / "x" / name).read_bytes() == (built.root / name).read_bytes()
    with tarfile.open(release / "media-1.0.0.tar") as archive:
        assert {m.mtime for m in archive.getmembers()} == {1769904000}   # the release date, 00:00 UTC


def _evil_tar(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w") as archive:
        if kind == "link":
            info = tarfile.TarInfo("audio/link")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(info)
        else:
            info = tarfile.TarInfo({"dotdot": "../escaped.txt", "absolute": "/tmp/llinet-abs-escape.txt"}[kind])
            info.size = 4
            archive.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize("kind", ["dotdot", "link"])
def test_unsafe_archives_are_refused(tmp_path, kind):
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="unsafe archive member"):
        safe_extract(_evil_tar(tmp_path / "evil.tar", kind), dest)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (dest / "audio" / "link").exists()


def test_absolute_member_names_stay_inside_the_destination(tmp_path):
    outside = Path("/tmp/llinet-abs-escape.txt")
    outside.unlink(missing_ok=True)
    safe_extract(_evil_tar(tmp_path / "evil.tar", "absolute"), tmp_path / "dest")
    assert not outside.exists()  # the "data" filter strips the leading slash
    assert (tmp_path / "dest" / "tmp" / "llinet-abs-escape.txt").read_bytes() == b"evil"


def test_datasheet_section_is_regenerated(release, tmp_path):
    sheet = tmp_path / "DATASET.md"
    sheet.write_text(f"# Datasheet\n\n{BEGIN}\nold\n{END}\n\nrest\n")
    assert update_release_stats(sheet, release) is True
    text = sheet.read_text()
    assert "Release **1.0.0** (2026-02-01): **14 clips** in 5 classes, 6 with a segmentation mask" in text
    assert "| Accordion | train | 2 | 0 | 4 | 1 |" in text and text.endswith("rest\n")
    assert update_release_stats(sheet, release) is False
    sheet.write_text("no markers\n")
    with pytest.raises(InputError, match="markers"):
        update_release_stats(sheet, release)


def test_cli_release_and_bad_inputs(built, tmp_path, capsys):
    sheet = tmp_path / "DATASET.md"
    sheet.write_text(f"{BEGIN}\n{END}\n")
    assert main(["release", "--version", "2.0.0", "--root", str(built.root), "--date", DATE, "--no-progress",
                 "--datasheet", str(sheet), str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "release 2.0.0: 8 files" in out and "updated" in out
    assert "Release **2.0.0**" in sheet.read_text()
    # a release is immutable: the folder must be new
    assert main(["release", "--version", "2.0.1", "--root", str(built.root), "--no-progress",
                 str(tmp_path / "r2")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert json.loads((tmp_path / "r2" / "stats.json").read_text())["version"] == "2.0.0"
    for bad, message in ((["--version", "v1"], "semantic versioning"),
                         (["--version", "1.0.0", "--date", "2026-13-01"], "YYYY-MM-DD")):
        assert main(["release", *bad, "--root", str(built.root), str(tmp_path / "r3")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r3").exists()
    manifest = read_manifest(built.manifest_path).assign(selected=False)
    with pytest.raises(InputError, match="nothing to release"):
        build_release(manifest, ReleaseOptions(root=built.root, out=tmp_path / "r4", version="1.0.0",
                                               progress=False))
    assert not (tmp_path / "r4").exists()
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p]
