"""`split`: presets, the leakage rule between every pair of class groups, refill, audit."""
from __future__ import annotations

import pytest

from builder.audioset.classes import load_classes
from builder.audioset.parse import load_ontology
from builder.errors import InputError
from builder.selection.select import SelectOptions, select_clips
from builder.selection.split import SplitOptions, audit_manifest, class_splits, split_manifest
from builder_helpers import MID, classes_csv, row, write_segments, ytid

TRAIN = ["Guitar", "Drum", "Bell", "Chime", "Piano", "Violin"]
TEST = ["Electric guitar", "Tabla"]


@pytest.fixture(scope="module")
def ontology(audioset_ontology):
    return load_ontology(audioset_ontology)


@pytest.fixture
def setup(tmp_path, ontology):
    classes = load_classes(classes_csv(tmp_path / "classes.csv", TRAIN, TEST))
    rows = []
    for k, name in enumerate(TRAIN + TEST):
        rows += [row(ytid(100 * k + i), [MID[name]]) for i in range(8)]
    # Bell clips that also carry Wind chime (a child of Chime): fine while Chime is a train class.
    rows += [row(ytid(900 + i), [MID["Bell"], MID["Wind chime"]]) for i in range(3)]
    sources = {"eval": [write_segments(tmp_path / "eval_segments.csv", rows)]}
    manifest, _ = select_clips(classes, ontology, sources, SelectOptions(cap=5))
    return classes, manifest


def test_paper_preset(setup, ontology):
    classes, manifest = setup
    out, audit = split_manifest(manifest, classes, ontology, SplitOptions(preset="paper"))
    assert set(out.loc[out["class"].isin(TEST), "split"]) == {"test"}
    assert set(out.loc[out["class"].isin(TRAIN), "split"]) == {"train"}
    assert audit["passed"] and audit["cap"] == 5
    assert audit["per_split"] == {"test": {"classes": 2, "clips": 10}, "train": {"classes": 6, "clips": 30}}
    assert audit["ytids_shared_across_splits"] == {"selected": 0, "selected_and_reserve": 0}
    assert audit["dropped_for_leakage"] == {}


def test_gzsl_validation_classes_enforce_leakage_and_refill(setup, ontology):
    classes, manifest = setup
    wind_chime_bells = set(manifest.loc[manifest["labels"].str.contains(MID["Wind chime"]), "clip_id"])
    assert len(wind_chime_bells) == 3
    options = SplitOptions(preset="gzsl", val_classes=("Chime",), test_seen_fraction=0.3, val_seen_fraction=0.3)
    out, audit = split_manifest(manifest, classes, ontology, options)
    # A Bell clip labelled Wind chime cannot stay in train once Chime is a validation class.
    assert wind_chime_bells.isdisjoint(out["clip_id"])
    assert audit["dropped_for_leakage"] == {"Bell": 3}
    assert set(out.loc[out["class"] == "Chime", "split"]) == {"val_unseen"}
    seen = out[out["class"].isin(set(TRAIN) - {"Chime"})]
    assert set(seen["split"]) == {"train", "test_seen", "val_seen"}
    # Bell is refilled to the cap from its reserve.
    assert out.loc[(out["class"] == "Bell") & out["selected"]].shape[0] == 5
    assert audit["passed"] and audit["classes_in_several_groups"] == 0
    assert audit["class_groups"]["Chime"] == "val_unseen" and audit["class_groups"]["Tabla"] == "test"


def test_gzsl_deterministic_choice(setup, ontology):
    classes, _ = setup
    a = class_splits(classes, SplitOptions(preset="gzsl", num_val_classes=2, seed=3))
    b = class_splits(list(reversed(classes)), SplitOptions(preset="gzsl", num_val_classes=2, seed=3))
    assert a == b and sum(v == "val_unseen" for v in a.values()) == 2
    assert all(a[n] == "test" for n in TEST)
    with pytest.raises(InputError, match="not train classes"):
        class_splits(classes, SplitOptions(preset="gzsl", val_classes=("Tabla",)))
    with pytest.raises(InputError, match="preset must be"):
        SplitOptions(preset="random")
    with pytest.raises(InputError, match="sum < 1"):
        SplitOptions(preset="gzsl", test_seen_fraction=0.6, val_seen_fraction=0.4)


def test_audit_catches_what_split_prevents(setup, ontology):
    classes, manifest = setup
    out, _ = split_manifest(manifest, classes, ontology, SplitOptions())
    group = {c.name: c.split for c in classes}
    broken = out.copy()
    # Smuggle a test label into a train clip and reuse one YTID across splits.
    i = broken.index[broken["class"] == "Guitar"][0]
    broken.loc[i, "labels"] += "," + MID["Electric guitar"]
    j = broken.index[broken["class"] == "Tabla"][0]
    broken.loc[j, "ytid"] = broken.loc[broken.index[broken["class"] == "Piano"][0], "ytid"]
    audit = audit_manifest(broken, classes, ontology, group)
    assert not audit["passed"]
    assert audit["clips_with_labels_of_held_out_classes"] == 1
    assert audit["ytids_shared_across_splits"]["selected_and_reserve"] == 1


def test_split_rejects_unknown_classes(setup, ontology):
    classes, manifest = setup
    with pytest.raises(InputError, match="not in the class list"):
        split_manifest(manifest, [c for c in classes if c.name != "Piano"], ontology)
