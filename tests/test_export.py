"""export: the official layout (read back through its pickles), WebDataset shards, HF Parquet via `datasets`."""
from __future__ import annotations

import io
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from builder.commands.main import main
from builder.demo.synthetic_release import TEST_CLASSES, TRAIN_CLASSES, make_dataset
from builder.errors import InputError
from builder.export.masks import load_masks
from builder.export.stage import ExportOptions, export
from builder.manifest.schema import read_manifest, write_manifest


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("built"))


@pytest.fixture(scope="module")
def manifest(built):
    return read_manifest(built.manifest_path)


def released(manifest: pd.DataFrame) -> pd.DataFrame:
    ok = (manifest["fetch_status"] == "ok") & (manifest["curation"] != "rejected")
    return manifest[ok]


def run_export(built, manifest, out: Path, fmt: str, **kw):
    return export(manifest, ExportOptions(root=built.root, out=out, format=fmt, annotations=built.annotations,
                                          progress=False, **kw))


def load_pickle(path: Path):
    # Reading back the index files this test's export just wrote (never outside files).
    with open(path, "rb") as handle:
        return pickle.load(handle)


# --------------------------------------------------------------------------- official layout
def test_official_layout_is_readable_through_its_pickles(built, manifest, tmp_path):
    out = tmp_path / "official"
    report = run_export(built, manifest, out, "llinet")
    data = out / "traindata"
    idx = {name: load_pickle(data / f"{name}.pickle") for name in
           ("train_image_files", "train_class_ids", "train_audio_files",
            "test_image_files", "test_class_ids", "test_audio_files")}
    keep = released(manifest)
    train_classes = sorted(n for n, _ in TRAIN_CLASSES)
    test_classes = sorted(n for n, _ in TEST_CLASSES)
    # Train: one key per released train clip, class folder = key's 2nd component, ids = sorted-name position.
    assert len(idx["train_image_files"]) == int((keep["split"] == "train").sum()) == 8
    assert len(idx["train_class_ids"]) == len(idx["train_image_files"])
    for key, cid in zip(idx["train_image_files"], idx["train_class_ids"], strict=True):
        split, cls, kind, name = key.split("/")
        assert (split, kind) == ("train", "video") and train_classes[cid] == cls and name.startswith(cls)
        with Image.open(data / key) as img:
            assert img.size == (96, 96)
        # the loader picks a random audio of the image's class from this dict
        assert idx["train_audio_files"][cls] and all((data / a).is_file() for a in idx["train_audio_files"][cls])
    assert sorted(idx["train_audio_files"]) == train_classes
    assert len(idx["train_audio_files"]["Accordion"]) == 2           # one of three was rejected in curation
    # Test: aligned lists; the loader finds the segment by replacing 'video' with 'segment'.
    assert len(idx["test_image_files"]) == len(idx["test_audio_files"]) == len(idx["test_class_ids"]) == 6
    masks = load_masks(built.annotations)
    index = pd.read_csv(out / "export_index.csv", dtype=str, keep_default_na=False).set_index("image")
    for key, audio_key, cid in zip(idx["test_image_files"], idx["test_audio_files"], idx["test_class_ids"],
                                   strict=True):
        assert test_classes[cid] == key.split("/")[1]
        wav, rate = soundfile.read(data / (audio_key[:-4] + ".wav"))
        assert rate == 16000 and wav.shape == (48000, 2)
        segment = np.asarray(Image.open(str(data / key).replace("video", "segment")).convert("L"))
        truth = masks.mask(index.loc[key, "clip_id"])
        assert np.array_equal(segment > 127, truth)
        # what the official evaluation reads: RGB resized to 16x16, binarised > 0
        seg16 = np.asarray(Image.open(str(data / key).replace("video", "segment")).convert("RGB").resize((16, 16)))
        ideal16 = np.asarray(Image.fromarray(truth.astype(np.uint8) * 255).convert("RGB").resize((16, 16)))
        assert np.array_equal(seg16.mean(axis=2) > 0, ideal16.mean(axis=2) > 0)
    # test_without_seg: every test clip, with the original (full) frame
    plain = sorted((data / "test_without_seg").rglob("*.jpg"))
    assert len(plain) == 6 and all(Image.open(p).size == (128, 96) for p in plain)
    assert report.masks == 6 and report.excluded == {"curation rejected": 1, "fetch unavailable": 5}
    rejected = manifest.loc[manifest["curation"] == "rejected", "clip_id"].iloc[0]
    assert rejected not in set(index["clip_id"])


def test_test_clip_without_mask_goes_to_test_without_seg_only(built, manifest, tmp_path):
    coco = json.loads(built.annotations.read_text())
    dropped = coco["images"][0]["clip_id"]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != coco["images"][0]["id"]]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(coco))
    report = export(manifest, ExportOptions(root=built.root, out=tmp_path / "o", annotations=partial, progress=False))
    test_images = load_pickle(tmp_path / "o" / "traindata" / "test_image_files.pickle")
    assert len(test_images) == 5 and report.masks == 5
    assert any("no mask" in n for n in report.notes)
    index = pd.read_csv(tmp_path / "o" / "export_index.csv", dtype=str, keep_default_na=False)
    row = index[index["clip_id"] == dropped].iloc[0]
    assert row["segment"] == "" and row["image"] == "" and row["image_without_seg"]


def test_reexport_removes_stale_files_and_refuses_a_foreign_folder(built, manifest, tmp_path):
    out = tmp_path / "again"
    run_export(built, manifest, out, "llinet")
    fewer = manifest.copy()
    victim = fewer.index[(fewer["class"] == "Piano") & (fewer["fetch_status"] == "ok")][0]
    fewer.loc[victim, "curation"] = "rejected"
    run_export(built, fewer, out, "llinet")
    assert not (out / "traindata" / "train" / "Piano" / "sound" / "Piano00003.wav").exists()
    assert len(load_pickle(out / "traindata" / "train_audio_files.pickle")["Piano"]) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        run_export(built, manifest, foreign, "llinet")
    assert (foreign / "precious.txt").read_text() == "keep me"


# --------------------------------------------------------------------------- WebDataset
def test_webdataset_shards_are_deterministic_and_mix_classes(built, manifest, tmp_path):
    run_export(built, manifest, tmp_path / "a", "webdataset", shard_size=4, mtime=1700000000)
    run_export(built, manifest, tmp_path / "b", "webdataset", shard_size=4, mtime=1700000000)
    shards = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.tar"))
    assert [str(s) for s in shards] == ["test/test-000000.tar", "test/test-000001.tar",
                                        "train/train-000000.tar", "train/train-000001.tar"]
    for rel in shards:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    masks = load_masks(built.annotations)
    samples: dict[str, dict[str, bytes]] = {}
    for rel in shards:
        with tarfile.open(tmp_path / "a" / rel) as archive:
            for member in archive.getmembers():
                assert (member.mtime, member.uid, member.gid, member.uname, member.mode) == \
                    (1700000000, 0, 0, "", 0o644)
                key, ext = member.name.split(".", 1)
                samples.setdefault(key, {})[ext] = archive.extractfile(member).read()
    assert len(samples) == 14
    for key, parts in samples.items():
        meta = json.loads(parts["json"])
        assert meta["clip_id"] == key and {"wav", "jpg", "full.jpg", "cls"} <= set(parts)
        assert parts["wav"] == (built.root / "audio" / f"{key}.wav").read_bytes()
        if meta["split"] == "test":
            assert meta["has_mask"] and np.array_equal(
                np.asarray(Image.open(io.BytesIO(parts["seg.png"]))) > 0, masks.mask(key))
        else:
            assert "seg.png" not in parts
    listing = json.loads((tmp_path / "a" / "shards.json").read_text())
    assert sum(s["clips"] for s in listing["shards"]) == 14
    assert listing["splits"]["train"] == {"shards": 2, "clips": 8,
                                          "bytes": sum(s["bytes"] for s in listing["shards"] if s["split"] == "train")}
    assert all(s["bytes"] == (tmp_path / "a" / s["path"]).stat().st_size for s in listing["shards"])
    assert listing["order"] == "seeded class interleave" and len(listing["class_names"]) == 32


def test_webdataset_reads_with_the_webdataset_package(built, manifest, tmp_path):
    """The consumer: .cls decodes to the class index, shards mix classes, audio and images decode."""
    import soundfile
    import webdataset as wds  # dev dependency; a missing one must fail, not skip

    from builder.export.about import class_names

    run_export(built, manifest, tmp_path / "w", "webdataset", shard_size=3)
    listing = json.loads((tmp_path / "w" / "shards.json").read_text())
    names = class_names([])
    assert listing["class_names"] == names[:32] and names.index("Tabla") == 31
    seen: dict[str, list[str]] = {}
    for shard in listing["shards"]:
        dataset = wds.WebDataset(str(tmp_path / "w" / shard["path"]), shardshuffle=False).decode("pil")
        for sample in dataset:
            meta = sample["json"]
            assert isinstance(sample["cls"], int) and names[sample["cls"]] == meta["class"]
            assert sample["jpg"].size == (96, 96) and sample["full.jpg"].size == (128, 96)
            audio, rate = soundfile.read(io.BytesIO(sample["wav"]))
            assert rate == 16000 and audio.shape == (48000, 2)
            seen.setdefault(shard["path"], []).append(meta["class"])
        assert len(seen[shard["path"]]) == shard["clips"] and len(set(seen[shard["path"]])) == shard["classes"]
    train = [c for path, classes in seen.items() if path.startswith("train/") for c in classes]
    assert sorted(train) == sorted(["Accordion"] * 2 + ["Banjo"] * 3 + ["Piano"] * 3)
    # every train shard of 3 holds at least two classes; a class-grouped order would give pure shards
    assert all(len(set(classes)) >= 2 for path, classes in seen.items() if path.startswith("train/")
               and len(classes) == 3)


# --------------------------------------------------------------------------- Hugging Face Parquet
def test_hf_parquet_loads_and_decodes_with_datasets(built, manifest, tmp_path):
    import datasets  # dev dependency (setup.cfg [dev]); a missing one must fail, not skip
    import yaml

    from builder.export.about import class_names

    run_export(built, manifest, tmp_path / "hf", "hf")
    files = {split: str(tmp_path / "hf" / "data" / f"{split}-*.parquet") for split in ("train", "test")}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows == 8 and ds["test"].num_rows == 6
    assert isinstance(ds["test"].features["audio"], datasets.Audio)
    assert isinstance(ds["test"].features["mask"], datasets.Image)
    label = ds["train"].features["class"]
    assert isinstance(label, datasets.ClassLabel) and label.num_classes == 32
    assert label.names == class_names([]) and label.names[:3] == ["Accordion", "Bagpipes", "Banjo"]
    assert sorted({label.int2str(c) for c in ds["train"]["class"]}) == ["Accordion", "Banjo", "Piano"]
    row = ds["test"][0]
    assert label.int2str(row["class"]) == manifest.set_index("clip_id").loc[row["clip_id"], "class"]
    samples = row["audio"].get_all_samples()
    wav, rate = soundfile.read(built.root / "audio" / f"{row['clip_id']}.wav", dtype="float32")
    assert samples.sample_rate == rate == 16000
    assert np.allclose(samples.data.numpy().T, wav, atol=1e-4)
    assert row["image"].size == (96, 96) and row["image_full"].size == (128, 96)
    assert np.array_equal(np.asarray(row["mask"]) > 0, load_masks(built.annotations).mask(row["clip_id"]))
    assert ds["train"][0]["mask"] is None and ds["train"][0]["has_mask"] is False
    # the README's YAML makes the folder itself loadable, with the same features
    folder = datasets.load_dataset(str(tmp_path / "hf"), cache_dir=str(tmp_path / "cache2"))
    assert folder["test"].num_rows == 6 and folder["test"].features["class"] == label
    card = (tmp_path / "hf" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "cc-by-4.0"
    assert [c["split"] for c in header["configs"][0]["data_files"]] == ["test", "train"]
    for text in ("| train | 8 | 3 | 0 |", "| test | 6 | 2 | 6 |", "## Zero-shot rule", "never on `test`",
                 "@inproceedings{jia2020look", "| 31 | Tabla | test |", "## Licence"):
        assert text in card


# --------------------------------------------------------------------------- CLI and bad input
def test_cli_export_and_clear_errors(built, tmp_path, capsys):
    assert main(["export", "--root", str(built.root), "--format", "webdataset", "--no-progress",
                 "--out", str(tmp_path / "wds")]) == 0
    assert "14 clips, 6 masks" in capsys.readouterr().out
    assert main(["export", "--root", str(tmp_path / "nowhere"), "--no-progress", "--out", str(tmp_path / "x")]) == 2
    assert "manifest not found" in capsys.readouterr().err


def _edited(built, manifest, tmp_path, edit) -> Path:
    root = tmp_path / "root"
    shutil.copytree(built.root, root)
    changed = edit(manifest.copy(), root)
    write_manifest(changed, root / "manifest.csv")
    return root


@pytest.mark.parametrize("case, edit, message", [
    ("missing media", lambda m, r: ((r / "audio" / f"{m.loc[0, 'clip_id']}.wav").unlink(), m)[1], "is missing"),
    ("path escapes root", lambda m, r: m.assign(audio_path=["../x.wav"] * len(m)), "without '..'"),
    ("no trim columns", lambda m, r: m.drop(columns=["audio_path"]), "run `llinet-build trim`"),
    ("unknown curation", lambda m, r: m.assign(curation=["maybe"] * len(m)), "unknown curation decision"),
    ("bad clip id", lambda m, r: m.assign(clip_id=["../../etc"] + list(m["clip_id"][1:])), "clip"),
])
def test_bad_manifests_are_refused_with_the_reason(built, manifest, tmp_path, case, edit, message):
    root = _edited(built, manifest, tmp_path, edit)
    with pytest.raises(InputError, match=message):
        export(read_manifest(root / "manifest.csv"),
               ExportOptions(root=root, out=tmp_path / "o", annotations=root / "annotations.json", progress=False))
    assert not (tmp_path / "o" / "traindata").exists()


def _coco_edit(built, tmp_path, edit) -> Path:
    coco = json.loads(built.annotations.read_text())
    edit(coco)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco) if isinstance(coco, dict) else coco)
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["images"][0].update(width=50, height=50), "mask is"),
    (lambda c: c["annotations"][0].update(category_id=1), "labelled"),
    (lambda c: c["annotations"][0].update(image_id=999999), "unknown image_id"),
    (lambda c: c["annotations"][0].update(category_id=77), "unknown category_id"),
    (lambda c: c.pop("images"), "no 'images' list"),
    (lambda c: c["images"][0].update(clip_id="nope", file_name="x.jpg"), "no valid clip id"),
    (lambda c: c["annotations"][0].update(segmentation={"size": [96, 96], "counts": "%%%"}), "segmentation"),
    (lambda c: c["annotations"][0].update(segmentation=[[1, 2, 3, 4]]), "unreadable segmentation .*3 points"),
])
def test_bad_annotations_are_refused_naming_the_file(built, manifest, tmp_path, edit, message):
    path = _coco_edit(built, tmp_path, edit)
    with pytest.raises(InputError, match=message) as info:
        export(manifest, ExportOptions(root=built.root, out=tmp_path / "o", annotations=path, progress=False))
    assert str(path) in str(info.value)


def test_other_bad_inputs(built, manifest, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        export(manifest, ExportOptions(root=built.root, out=tmp_path / "o", annotations=garbage, progress=False))
    with pytest.raises(InputError, match="export format"):
        ExportOptions(root=built.root, out=tmp_path / "o", format="zip")
    with pytest.raises(InputError, match="no clips to export"):
        export(manifest.assign(selected=False), ExportOptions(root=built.root, out=tmp_path / "o", progress=False))
    video = manifest.replace({"class": {"Banjo": "Banjo video"}})
    with pytest.raises(InputError, match="contains 'video'"):
        export(video, ExportOptions(root=built.root, out=tmp_path / "v", progress=False))
