"""llinet-build annotate import / tasks / preview end to end on a small media root."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from builder.annotate.coco import load_annotations, mask_for_clip
from builder.commands.main import main
from test_annotate_helpers import box, build_root, clip_id, save_mask

TABLA, DIDGE, SHOFAR = clip_id("tabla"), clip_id("didgeridoo"), clip_id("shofar")


@pytest.fixture()
def root(tmp_path):
    build_root(tmp_path / "root")
    return tmp_path / "root"


def test_import_masks_then_merge_labelme_then_replace_all(root, tmp_path, capsys):
    masks = tmp_path / "masks"
    save_mask(masks / f"{TABLA}.png", box(48, 10, 10, 30, 30))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(masks)]) == 0
    out = capsys.readouterr().out
    assert "1 mask(s) for 1 clip(s)" in out and "without a mask: 3 of 4" in out
    labelme = tmp_path / "lm" / f"{DIDGE}.json"
    labelme.parent.mkdir()
    labelme.write_text(json.dumps({"version": "5.5.0", "flags": {}, "imagePath": f"{DIDGE}.jpg", "imageData": None,
                                   "imageWidth": 40, "imageHeight": 40, "shapes": [
                                       {"label": "Didgeridoo", "points": [[0, 0], [9, 0], [9, 9], [0, 9]],
                                        "group_id": None, "shape_type": "polygon", "flags": {}}]}))
    assert main(["annotate", "import", "--root", str(root), "--from-labelme", str(labelme.parent)]) == 0
    coco = load_annotations(root / "annotations.json")
    assert {img["clip_id"] for img in coco["images"]} == {TABLA, DIDGE}     # merged, not replaced
    assert mask_for_clip(coco, DIDGE).sum() == 100
    save_mask(masks / f"{TABLA}.png", box(48, 0, 0, 4, 4))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(masks), "--replace-all"]) == 0
    coco = load_annotations(root / "annotations.json")
    assert [img["clip_id"] for img in coco["images"]] == [TABLA] and mask_for_clip(coco, TABLA).sum() == 16
    assert len(coco["categories"]) == 32


def test_import_error_exits_2_names_the_file_and_writes_nothing(root, tmp_path, capsys):
    masks = tmp_path / "masks"
    save_mask(masks / f"{TABLA}.png", box(48, 10, 10, 30, 30))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(masks)]) == 0
    before = (root / "annotations.json").read_bytes()
    bad = save_mask(masks / f"{clip_id('drum')}.png", box(32, 0, 0, 5, 5))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(masks)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "split 'train'" in err
    assert (root / "annotations.json").read_bytes() == before


def test_tasks_export_opens_in_each_tool_format_and_round_trips(root, tmp_path, capsys):
    save_mask(tmp_path / "masks" / f"{SHOFAR}.png", box(36, 0, 0, 9, 9))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(tmp_path / "masks")]) == 0
    out = tmp_path / "tasks"
    assert main(["annotate", "tasks", "--root", str(root), "--out", str(out)]) == 0
    # Selected masked-split clips with a frame, minus the one already annotated.
    wanted = sorted([TABLA, DIDGE])
    assert sorted(p.stem for p in (out / "images").glob("*.jpg")) == wanted
    assert (out / "images" / f"{TABLA}.jpg").read_bytes() == (root / "frames" / f"{TABLA}.jpg").read_bytes()
    assert [line.rsplit("/", 1)[-1] for line in (out / "images.txt").read_text().splitlines()] == \
        [f"{c}.jpg" for c in wanted]
    cvat = COCO(str(out / "cvat_coco.json"))
    assert sorted(img["file_name"] for img in cvat.dataset["images"]) == [f"{c}.jpg" for c in wanted]
    assert cvat.dataset["annotations"] == [] and len(cvat.dataset["categories"]) == 32
    tasks = json.loads((out / "label_studio_tasks.json").read_text())
    assert tasks[0]["data"]["image"] == f"/data/local-files/?d=images/{wanted[0]}.jpg"
    config = ElementTree.fromstring((out / "label_studio_config.xml").read_text())
    assert sorted(label.get("value") for label in config.iter("Label")) == ["Didgeridoo", "Tabla"]
    assert (out / "labels.txt").read_text().splitlines() == ["Didgeridoo", "Tabla"]   # class-list order
    assert [label["name"] for label in json.loads((out / "cvat_labels.json").read_text())] == \
        (out / "labels.txt").read_text().splitlines()

    # A CVAT export made from that task file: add one polygon annotation and import it.
    doc = json.loads((out / "cvat_coco.json").read_text())
    image = next(img for img in doc["images"] if img["clip_id"] == TABLA)
    category = next(c["id"] for c in doc["categories"] if c["name"] == "Tabla")
    doc["annotations"] = [{"id": 1, "image_id": image["id"], "category_id": category, "iscrowd": 0,
                           "segmentation": [[5, 5, 25, 5, 25, 15, 5, 15]], "area": 200, "bbox": [5, 5, 20, 10]}]
    (tmp_path / "cvat_export.json").write_text(json.dumps(doc))
    assert main(["annotate", "import", "--root", str(root), "--from-coco", str(tmp_path / "cvat_export.json")]) == 0
    assert np.array_equal(mask_for_clip(load_annotations(root / "annotations.json"), TABLA), box(48, 5, 5, 15, 25))
    capsys.readouterr()
    assert main(["annotate", "tasks", "--root", str(root), "--out", str(tmp_path / "t2")]) == 0
    assert sorted(p.stem for p in (tmp_path / "t2" / "images").glob("*.jpg")) == [DIDGE]


def test_preview_contact_sheet_tints_the_masked_pixels(root, tmp_path, capsys):
    save_mask(tmp_path / "masks" / f"{TABLA}.png", box(48, 0, 0, 24, 24))
    assert main(["annotate", "import", "--root", str(root), "--from-masks", str(tmp_path / "masks")]) == 0
    sheet = tmp_path / "sheet.png"
    assert main(["annotate", "preview", "--root", str(root), "--out", str(sheet), "--include-unmasked",
                 "--columns", "2", "--tile", "96"]) == 0
    assert "3 tile(s), 1 with a mask" in capsys.readouterr().out     # tabla, didgeridoo, shofar (with frames)
    image = np.array(Image.open(sheet).convert("RGB")).astype(int)
    assert image.shape == (2 * (96 + 30), 2 * 96, 3)
    # Tiles are in clip-id order: didgeridoo (0), shofar (1), tabla (2) -> tabla is row 1, column 0.
    top = 96 + 30
    inside, outside = image[top + 20, 20], image[top + 70, 70]
    assert inside[0] - inside[1] > 60                 # tinted red over the grey frame
    assert abs(outside[0] - outside[1]) < 10          # untouched grey
    assert main(["annotate", "preview", "--root", str(root), "--out", str(sheet), "--clip", "zzzzzzzzzzz_0"]) == 2
