"""Class lists: the committed 32 classes, `resolve` errors, duplicates and split conflicts."""
from __future__ import annotations

import pytest

from builder.audioset.classes import check_against_ontology, load_classes, resolve_name
from builder.audioset.parse import load_ontology
from builder.commands.main import main
from builder.errors import InputError
from conftest import REPO_ROOT

CLASSES = REPO_ROOT / "manifests" / "instrument32" / "classes.csv"
# The paper's 32 classes and their MIDs, as AudioSet's ontology.json lists them.
EXPECTED = {
    "Accordion": "/m/0mkg", "Bagpipes": "/m/0192l", "Banjo": "/m/018j2", "Bell": "/m/0395lw", "Cello": "/m/01xqw",
    "Chime": "/m/0f8s22", "Clarinet": "/m/01wy6", "Drum": "/m/026t6", "Flute": "/m/0l14j_", "Gong": "/m/0mbct",
    "Guitar": "/m/0342h", "Harmonica": "/m/03qjg", "Harp": "/m/03m5k", "Mandolin": "/m/04rzd", "Marimba": "/m/0dwsp",
    "Piano": "/m/05r5c", "Saxophone": "/m/06ncr", "Singing bowl": "/m/0l14t7", "Sitar": "/m/0jtg0",
    "Steel pan": "/m/0l156b", "Trumpet": "/m/07gql", "Ukulele": "/m/07xzm", "Violin": "/m/07y_7", "Zither": "/m/01bns_",
    "Didgeridoo": "/m/02bxd", "Double bass": "/m/02fsn", "Electric guitar": "/m/02sgy", "French horn": "/m/0319l",
    "Glockenspiel": "/m/0dwtp", "Shofar": "/m/0l14l2", "Steel guitar": "/m/06w87", "Tabla": "/m/01p970",
}
TEST_CLASSES = {"Didgeridoo", "Double bass", "Electric guitar", "French horn", "Glockenspiel", "Shofar",
                "Steel guitar", "Tabla"}


@pytest.fixture(scope="module")
def ontology(audioset_ontology):
    return load_ontology(audioset_ontology)


def test_committed_class_list(ontology):
    classes = check_against_ontology(load_classes(CLASSES), ontology, CLASSES)
    assert {c.name: c.mid for c in classes} == EXPECTED
    assert {c.name for c in classes if c.split == "test"} == TEST_CLASSES
    assert sum(c.split == "train" for c in classes) == 24
    assert {c.name: c.display_name for c in classes}["Steel guitar"] == "Steel guitar, slide guitar"


def test_names_resolve_with_aliases_and_spacing(ontology):
    assert resolve_name("Marimba", "train", ontology).mid == "/m/0dwsp"
    assert resolve_name("violin", "train", ontology).display_name == "Violin, fiddle"
    assert resolve_name("Steel pan", "train", ontology).mid == "/m/0l156b"  # ontology says 'Steelpan'


def test_unknown_name_suggests_close_matches(ontology):
    with pytest.raises(InputError, match=r"unknown class 'Guitr'.*did you mean 'Guitar'"):
        resolve_name("Guitr", "train", ontology)


def test_ambiguous_name_lists_candidates_with_paths(ontology):
    with pytest.raises(InputError) as err:
        resolve_name("Inside", "train", ontology)
    text = str(err.value)
    assert "ambiguous class 'Inside'" in text and "matches 3 ontology entries" in text
    for mid in ("/t/dd00125", "/t/dd00126", "/t/dd00127"):
        assert mid in text
    assert "Acoustic environment > Inside, small room" in text


@pytest.mark.parametrize("rows,message,line", [
    (["Guitar,/m/0342h,Guitar,train", "Guitar,/m/0342h,Guitar,train"], "listed twice", 3),
    (["Guitar,/m/0342h,Guitar,train", "Guitar,/m/0342h,Guitar,test"], "listed in both splits", 3),
    (["Guitar,/m/0342h,Guitar,train", "Drum,/m/026t6,Drum,seen"], "split must be one of", 3),
    (["Guitar,/m/0342h,Guitar,train", "Drum,,Drum,train"], "empty value", 3),
])
def test_bad_class_lists(tmp_path, rows, message, line):
    path = tmp_path / "c.csv"
    path.write_text("name,mid,display_name,split\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=message) as err:
        load_classes(path)
    assert err.value.line == line and err.value.file == str(path)


def test_csv_checked_against_ontology(tmp_path, ontology):
    path = tmp_path / "c.csv"
    path.write_text("name,mid,display_name,split\nGuitar,/m/0342h,Guitar,train\nBanjo,/m/nope,Banjo,test\n")
    with pytest.raises(InputError, match=r"unknown MID '/m/nope'.*\(the ontology has 'Banjo' as /m/018j2\)") as err:
        check_against_ontology(load_classes(path), ontology, path)
    assert err.value.line == 3 and err.value.field == "mid"
    path.write_text("name,mid,display_name,split\nMarimba,/m/0dwsp,Marimba,train\n")
    with pytest.raises(InputError, match="differs from the ontology's 'Marimba, xylophone'"):
        check_against_ontology(load_classes(path), ontology, path)


def test_resolve_cli(audioset_ontology, tmp_path, capsys):
    metadata = audioset_ontology.parent   # resolve reads only ontology.json
    out = tmp_path / "resolved.csv"
    assert main(["resolve", "Guitar", "Steel pan", "--test", "Tabla", "--audioset", str(metadata),
                 "--out", str(out)]) == 0
    assert "3 classes resolved: 2 train, 1 test" in capsys.readouterr().out
    assert [c.name for c in load_classes(out)] == ["Guitar", "Steel pan", "Tabla"]
    assert main(["resolve", "Guitar", "--test", "guitar", "--audioset", str(metadata)]) == 2
    assert "listed in both splits" in capsys.readouterr().err
    assert main(["resolve", str(CLASSES), "--audioset", str(metadata)]) == 0
    assert "32 classes resolved: 24 train, 8 test" in capsys.readouterr().out
