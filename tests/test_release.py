"""release: ID manifest with formats, checksums, stats, figure, provenance, Croissant (complete, every record set
read by mlcroissant), metadata options, datasheet and README, packing."""
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
    assert {"clips.csv", "annotations.json", "masks.csv", "stats.json", "provenance.json", "croissant.json",
            "class_distribution.png", "fingerprints.npz", "media-1.0.0.tar", "DATASET.md", "README.md"} == set(listed)


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
    # each released file's format, as verify compares it
    formats = ["audio_container", "audio_codec", "audio_sample_rate", "audio_channels", "audio_samples",
               "frame_container", "frame_width", "frame_height", "frame_channels", "frame_full_width",
               "frame_full_height"]
    assert [first[c] for c in formats] == ["wav", "pcm_s16le", "16000", "2", "48000", "jpeg", "96", "96", "3",
                                           "128", "96"]
    assert set(ids.loc[ids["released"] == "0", "audio_sample_rate"]) == {""}


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


# Croissant 1.1: properties a dataset must have, and those it should have (the spec's "Required" and
# "Recommended" tables); each FileObject needs a name, URL, format and checksum, each FileSet its container
# and pattern, each RecordSet fields with a name, a data type and a source.
REQUIRED = ("@context", "@type", "conformsTo", "description", "license", "name", "url", "creator", "datePublished",
            "distribution")
RECOMMENDED = ("keywords", "publisher", "version", "dateCreated", "dateModified", "sdLicense", "inLanguage",
               "citeAs")
MLCROISSANT_READ = """
import io, json, sys
import mlcroissant as mlc
import soundfile
dataset = mlc.Dataset(sys.argv[1])
issues = dataset.metadata.ctx.issues
out = {"errors": sorted(map(str, issues.errors)), "warnings": sorted(map(str, issues.warnings)), "counts": {}}
for record_set in dataset.metadata.record_sets:
    records = list(dataset.records(record_set.name))
    out["counts"][record_set.name] = len(records)
    if record_set.name == "clips":
        out["released"] = sum(r["clips/released"] for r in records)
    if record_set.name == "masks":
        out["mask"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in records[0].items()}
    if record_set.name == "audio":
        samples, rate = soundfile.read(io.BytesIO(records[0]["audio/content"]))
        out["audio"] = [records[0]["audio/clip_id"].decode(), records[0]["audio/file"].decode(), rate,
                        list(samples.shape)]
    if record_set.name in ("frames", "frames_full"):
        image = records[0][record_set.name + "/content"]
        out[record_set.name] = [records[0][record_set.name + "/file"].decode(), list(image.size), image.mode]
print(json.dumps(out))
"""


def read_with_mlcroissant(croissant: Path, cache: Path) -> dict:
    """Every record set through mlcroissant, in a fresh process with its own cache (it caches by archive name)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", MLCROISSANT_READ, str(croissant)], capture_output=True, text=True,
                          env={**os.environ, "CROISSANT_CACHE": str(cache)}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_croissant_is_complete_and_every_record_set_reads(release, tmp_path):
    import mlcroissant as mlc  # dev dependency (setup.cfg [dev]); a missing one must fail, not skip
    assert mlc
    doc = json.loads((release / "croissant.json").read_text())
    assert not [k for k in REQUIRED + RECOMMENDED if not doc.get(k)]
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert doc["version"] == "1.0.0" and doc["datePublished"] == DATE
    assert (doc["dateCreated"], doc["dateModified"]) == ("2026-01-01", "2026-01-04")   # what the stages recorded
    assert doc["inLanguage"] == ["en"] and doc["sdLicense"] == doc["license"]
    for role in ("creator", "publisher"):                      # nobody named them: unset, loudly
        assert [a["name"].split(":")[0] for a in doc[role]] == ["UNSET"]
    objects = {d["contentUrl"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    assert set(objects) >= {"clips.csv", "annotations.json", "masks.csv", "stats.json", "media-1.0.0.tar",
                            "DATASET.md", "README.md"}
    for item in objects.values():
        assert {"name", "contentUrl", "encodingFormat", "sha256", "contentSize"} <= set(item)
        assert sha(release / item["contentUrl"]) == item["sha256"]
    sets = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileSet"}
    assert set(sets) == {"media-audio", "media-frames", "media-frames-full"}
    assert all(s["containedIn"] == {"@id": "media-1.0.0.tar"} and s["includes"] and s["encodingFormat"]
               for s in sets.values())
    assert [r["@id"] for r in doc["recordSet"]] == ["clips", "masks", "audio", "frames", "frames_full"]
    for record_set in doc["recordSet"]:
        assert record_set["field"] and all({"name", "dataType", "source"} <= set(f) for f in record_set["field"])

    read = read_with_mlcroissant(release / "croissant.json", tmp_path / "cache")
    assert read["errors"] == [] and read["warnings"] == []
    assert read["counts"] == {"clips": 20, "masks": 6, "audio": 14, "frames": 14, "frames_full": 14}
    assert read["released"] == 14
    clip_id, path, rate, shape = read["audio"]
    assert path == f"audio/{clip_id}.wav" and rate == 16000 and shape == [48000, 2]
    assert read["frames"][1:] == [[96, 96], "RGB"] and read["frames_full"][1:] == [[128, 96], "RGB"]
    masks = pd.read_csv(release / "masks.csv")
    first = masks.iloc[0]
    assert read["mask"]["masks/clip_id"] == first["clip_id"] and read["mask"]["masks/rle"] == first["rle"]
    from pycocotools import mask as mask_utils

    from builder.export.masks import load_masks
    decoded = mask_utils.decode({"size": [int(first["height"]), int(first["width"])], "counts": first["rle"]})
    assert (decoded.astype(bool) == load_masks(release / "annotations.json").mask(first["clip_id"])).all()
    assert read["mask"]["masks/class"] == first["class"] == "Tabla" and read["mask"]["masks/category_id"] == 4


def test_metadata_from_options_and_config_file(built, tmp_path, capsys):
    config = tmp_path / "release.toml"
    config.write_text('name = "my rebuild"\nurl = "https://example.org/i32"\nin_language = ["en", "de"]\n'
                      'creator = [{name = "Ada Lovelace", url = "https://orcid.org/0000-0001"}, "Lab Bot"]\n'
                      'publisher = {name = "Example Lab", type = "Organization"}\n'
                      'sd_license = "https://creativecommons.org/publicdomain/zero/1.0/"\n')
    out = tmp_path / "r"
    assert main(["release", "--version", "1.1.0", "--root", str(built.root), "--date", DATE, "--no-progress",
                 "--config", str(config), "--publisher", "Other Org <https://other.example>", "--out", str(out)]) == 0
    assert "UNSET" not in capsys.readouterr().err
    doc = json.loads((out / "croissant.json").read_text())
    assert doc["name"] == "my rebuild" and doc["url"] == "https://example.org/i32"
    assert doc["creator"] == [{"@type": "sc:Person", "name": "Ada Lovelace", "url": "https://orcid.org/0000-0001"},
                              {"@type": "sc:Person", "name": "Lab Bot"}]
    assert doc["publisher"] == [{"@type": "sc:Organization", "name": "Other Org", "url": "https://other.example"}]
    assert doc["inLanguage"] == ["en", "de"] and doc["sdLicense"].endswith("zero/1.0/")
    assert "Creator: Ada Lovelace (https://orcid.org/0000-0001); Lab Bot." in (out / "DATASET.md").read_text()
    # unset creator/publisher: a warning, and UNSET in the file
    assert main(["release", "--version", "1.1.1", "--root", str(built.root), "--date", DATE, "--no-progress",
                 "--out", str(tmp_path / "r2")]) == 0
    err = capsys.readouterr().err
    assert "no creator given, written as UNSET" in err and "no publisher given" in err
    # a release cannot be published before its data was made; bad config files name the problem
    assert main(["release", "--version", "1.1.2", "--root", str(built.root), "--date", "2025-12-31",
                 "--out", str(tmp_path / "r3")]) == 2
    assert "before the build's last recorded stage run (2026-01-04)" in capsys.readouterr().err
    config.write_text('creator = [{name = "X", email = "x@example.org"}]\n')
    assert main(["release", "--version", "1.1.3", "--root", str(built.root), "--config", str(config),
                 "--out", str(tmp_path / "r4")]) == 2
    assert "unknown key(s) ['email']" in capsys.readouterr().err
    config.write_text('colour = "blue"\n')
    assert main(["release", "--version", "1.1.3", "--root", str(built.root), "--config", str(config),
                 "--out", str(tmp_path / "r4")]) == 2
    assert "unknown setting(s) ['colour']" in capsys.readouterr().err


def test_release_folder_carries_its_datasheet_and_loading_readme(release):
    sheet = (release / "DATASET.md").read_text()
    for section in ("## Motivation", "## Composition", "## Collection process", "## Uses", "## Distribution",
                    "## Maintenance", "## Release statistics"):
        assert section in sheet
    assert "**14 released clips** in 5 classes, 6 with a segmentation mask, out of 20 clips considered" in sheet
    assert "| train | 8 | 3 | 0 | 0.01 |" in sheet and "| test | 6 | 2 | 6 | 0.01 |" in sheet
    assert "* audio: wav pcm_s16le, 16000 Hz, 2 channel(s), 48000 samples -- 14 clips" in sheet
    assert "sample_rate=16000" in sheet and "Creator: UNSET" in sheet
    readme = (release / "README.md").read_text()
    for consumer in ("### pandas", "### pycocotools", "### datasets", "### webdataset", "### mlcroissant",
                     "### The authors' code"):
        assert consumer in readme
    assert "`media-1.0.0.tar`" in readme


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
                 "--datasheet", str(sheet), "--out", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "release 2.0.0: 11 files" in out and "updated" in out
    assert "Release **2.0.0**" in sheet.read_text()
    # a release is immutable: the folder must be new
    assert main(["release", "--version", "2.0.1", "--root", str(built.root), "--no-progress",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert json.loads((tmp_path / "r2" / "stats.json").read_text())["version"] == "2.0.0"
    for bad, message in ((["--version", "v1"], "semantic versioning"),
                         (["--version", "1.0.0", "--date", "2026-13-01"], "YYYY-MM-DD")):
        assert main(["release", *bad, "--root", str(built.root), "--out", str(tmp_path / "r3")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "r3").exists()
    manifest = read_manifest(built.manifest_path).assign(selected=False)
    with pytest.raises(InputError, match="nothing to release"):
        build_release(manifest, ReleaseOptions(root=built.root, out=tmp_path / "r4", version="1.0.0",
                                               progress=False))
    assert not (tmp_path / "r4").exists()
    assert not [p for p in os.listdir(tmp_path) if ".partial-" in p]
