"""Nothing reported is chosen on test data: the GZSL constant and the localisation k come from
validation, whatever the test split would prefer, and the report names the sets they came from.

Validation and test sets are built so that their optimal gamma and k differ; the whole
``evaluate()`` path (embeddings file + COCO masks -> metrics.json) must report validation's.
"""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from builder.errors import InputError
from model.evaluation.api import EvalOptions, evaluate
from model.evaluation.embed import EmbeddingSet, save_embeddings
from model.evaluation.metrics.localization import select_llinet_k
from model.evaluation.metrics.masks import mask_to_grid
from model.evaluation.metrics.recognition import encode_labels, prototype_distances, tune_calibration
from model.evaluation.pipeline import EvalInputs, compute_metrics

UNSEEN_TEST, UNSEEN_VAL = ["Tabla", "Shofar", "Didgeridoo"], ["Gong", "Harp", "Zither"]
SEEN = ["Piano", "Violin", "Banjo"]


def _set(split: str, classes: list[str], per_class: int, rng: np.random.Generator, *, shift: float,
         wide_masks: bool) -> tuple[EmbeddingSet, dict[str, np.ndarray]]:
    """Embeddings around per-class centres (``shift`` moves the images off them, which moves the best
    GZSL constant); 16x16 maps with a 1.0 peak block and a 0.55 shoulder block. Masks cover the peak
    (k = 6 best) or, with ``wide_masks``, peak and shoulder (a low k best)."""
    names = np.repeat(classes, per_class)
    centres = {c: np.random.default_rng(zlib.crc32(c.encode())).standard_normal(12) for c in classes}
    base = np.stack([centres[c] for c in names])
    image = base + shift + 0.9 * rng.standard_normal(base.shape)
    audio = base + 0.9 * rng.standard_normal(base.shape)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    maps = np.full((len(names), 16, 16), 0.1, dtype=np.float32)
    clip_ids = np.array([f"{split[:5]}{i:06d}_{i}" for i in range(len(names))])
    masks = {}
    for i in range(len(names)):
        r, c = rng.integers(1, 11, size=2)
        maps[i, r - 1:r + 2, c - 1:c + 2] = 1.0
        maps[i, r - 1:r + 2, c + 3:c + 6] = 0.55
        full = np.zeros((64, 64), bool)
        full[4 * r:4 * r + 4, 4 * c:4 * c + 4] = True
        if wide_masks:
            full[4 * r:4 * r + 4, 4 * (c + 4):4 * (c + 4) + 4] = True
        masks[str(clip_ids[i])] = full
    return EmbeddingSet(split, clip_ids, names.astype(str), image.astype(np.float32), audio.astype(np.float32),
                        maps), masks


def _coco(masks: dict[str, np.ndarray]) -> dict:
    images, annotations = [], []
    for index, (clip, mask) in enumerate(masks.items(), start=1):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        images.append({"id": index, "file_name": f"{clip}.jpg", "height": 64, "width": 64})
        annotations.append({"id": index, "image_id": index, "category_id": 1, "segmentation": rle,
                            "area": int(mask.sum()), "iscrowd": 1})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "source"}]}


def _gamma(unseen: EmbeddingSet, seen: EmbeddingSet) -> float:
    """The calibration constant that is best on (unseen, seen), from the public metric functions."""
    classes = sorted(set(seen.classes)) + sorted(set(unseen.classes))
    labels, _ = encode_labels(np.concatenate([seen.classes, unseen.classes]), classes)
    distances = prototype_distances(np.concatenate([seen.image, unseen.image]),
                                    np.concatenate([seen.audio, unseen.audio]), labels, labels, len(classes))
    return tune_calibration(distances, labels, np.array([c in SEEN for c in classes]))[0]


def _k(data: EmbeddingSet, masks: dict[str, np.ndarray]) -> float:
    grids = np.stack([mask_to_grid(masks[str(c)]) for c in data.clip_ids])
    return select_llinet_k(data.maps, grids)[0]


@pytest.fixture()
def world(tmp_path):
    rng = np.random.default_rng(11)
    sets, masks = {}, {}
    for split, classes, shift, wide in (("test", UNSEEN_TEST, 0.6, True), ("val_unseen", UNSEEN_VAL, 0.0, False),
                                        ("test_seen", SEEN, -0.6, False), ("val_seen", SEEN, 0.3, False)):
        sets[split], split_masks = _set(split, classes, 6, rng, shift=shift, wide_masks=wide)
        if split in ("test", "val_unseen"):
            masks.update(split_masks)
    # The premise: validation and test would choose differently.
    assert _gamma(sets["val_unseen"], sets["val_seen"]) != pytest.approx(_gamma(sets["test"], sets["test_seen"]))
    assert _k(sets["val_unseen"], masks) == 6 and _k(sets["test"], masks) < 6
    embeddings = save_embeddings(tmp_path / "embeddings.npz", sets)
    masks_file = tmp_path / "masks.json"
    masks_file.write_text(json.dumps(_coco(masks)))
    return {"sets": sets, "masks": masks, "embeddings": embeddings, "masks_file": masks_file, "tmp": tmp_path}


def _evaluate(world, **options) -> dict:
    return evaluate(EvalOptions(embeddings=world["embeddings"], masks=world["masks_file"],
                                report=world["tmp"] / "report", draws=5, overlays=0, progress=False,
                                **options)).metrics


def test_reported_gamma_and_k_are_validations(world) -> None:
    metrics = _evaluate(world)
    sets = world["sets"]
    gzsl = metrics["gzsl"]["average_class"]
    assert gzsl["gamma"] == pytest.approx(_gamma(sets["val_unseen"], sets["val_seen"]))
    assert gzsl["gamma"] != pytest.approx(_gamma(sets["test"], sets["test_seen"]))
    assert gzsl["gamma_selected_on"] == "val_unseen + val_seen"
    assert metrics["gzsl"]["validation_sets"] == ["val_unseen", "val_seen"]
    localization = metrics["localization"]
    assert localization["llinet"]["k"] == 6
    assert localization["k_selected_on"] == "validation (val_unseen, 18 masked images)"
    best_on_test = max(localization["test_sensitivity_to_k"].values(), key=lambda r: r["auc"])
    assert best_on_test["auc"] > localization["llinet"]["auc"]      # test would have liked another k


def test_the_selected_on_fields_name_the_sets_actually_used(world) -> None:
    sets = dict(world["sets"])
    # The same validation data under other split names: the report follows the data passed in.
    sets["dev_unseen"] = sets.pop("val_unseen").subset(np.arange(18), split="dev_unseen")
    sets["dev_seen"] = sets.pop("val_seen").subset(np.arange(18), split="dev_seen")
    renamed = save_embeddings(world["tmp"] / "renamed.npz", sets)
    metrics = evaluate(EvalOptions(embeddings=renamed, masks=world["masks_file"], report=world["tmp"] / "r",
                                   val_split="dev_unseen", seen_val_split="dev_seen", draws=5, overlays=0,
                                   progress=False)).metrics
    assert metrics["gzsl"]["average_class"]["gamma_selected_on"] == "dev_unseen + dev_seen"
    assert metrics["localization"]["k_selected_on"].startswith("validation (dev_unseen,")
    original = _evaluate(world)["gzsl"]["average_class"]["gamma"]
    assert metrics["gzsl"]["average_class"]["gamma"] == pytest.approx(original)


def test_changing_the_test_data_never_changes_the_choices(world) -> None:
    before = _evaluate(world)
    sets = dict(world["sets"])
    test = sets["test"]
    # Test images moved (their own best gamma moves from ~0 to ~0.18) and sharper test maps:
    # the test numbers change, gamma and k must not.
    sets["test"] = EmbeddingSet("test", test.clip_ids, test.classes, test.image - 1.0, test.audio,
                                test.maps ** 3)
    assert _gamma(sets["test"], sets["test_seen"]) > 0.1
    changed = save_embeddings(world["tmp"] / "changed.npz", sets)
    after = evaluate(EvalOptions(embeddings=changed, masks=world["masks_file"], report=world["tmp"] / "c",
                                 draws=5, overlays=0, progress=False)).metrics
    assert after["gzsl"]["average_class"]["gamma"] == before["gzsl"]["average_class"]["gamma"]
    assert after["localization"]["llinet"]["k"] == before["localization"]["llinet"]["k"]
    assert after["gzsl"]["average_class"]["harmonic_mean"] != before["gzsl"]["average_class"]["harmonic_mean"]


@pytest.mark.parametrize("options", [{"val_split": "test"}, {"seen_val_split": "test_seen"},
                                     {"val_split": "test_seen"}])
def test_test_splits_are_refused_as_tuning_sets(world, options) -> None:
    with pytest.raises(InputError, match="is a test split"):
        _evaluate(world, **options)


def test_pipeline_refuses_test_data_wired_in_as_validation(world) -> None:
    sets = world["sets"]
    for wiring in ({"val": sets["test"]}, {"seen_val": sets["test_seen"]},
                   {"val": sets["test"].subset(np.arange(18), split="test")}):
        inputs = EvalInputs(**{"test": sets["test"], "val": sets["val_unseen"], "seen_test": sets["test_seen"],
                               "seen_val": sets["val_seen"], "masks": world["masks"], **wiring})
        with pytest.raises(ValueError, match="is test data"):
            compute_metrics(inputs, n_draws=5)
