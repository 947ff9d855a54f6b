"""Zero-shot / GZSL recognition metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from model.evaluation.metrics.recognition import (
    calibrated_gzsl,
    class_prototypes,
    confusion_matrix,
    encode_labels,
    gzsl_scores,
    harmonic_mean,
    mean_class_accuracy,
    prototype_distances,
    tune_calibration,
    zero_shot_recognition,
)

# Audio prototypes: class 0 -> (1, 0), class 1 -> (0, 3), class 2 -> (5, 5).
AUDIO = np.array([[0, 0], [2, 0], [0, 4], [0, 2], [5, 5]], dtype=float)
AUDIO_LABELS = np.array([0, 0, 1, 1, 2])


def test_prototypes_are_class_means():
    np.testing.assert_allclose(class_prototypes(AUDIO, AUDIO_LABELS, 3), [[1, 0], [0, 3], [5, 5]])
    assert np.isnan(class_prototypes(AUDIO, AUDIO_LABELS, 4)[3]).all()


def test_nearest_prototype_euclidean_hand_computed():
    images = np.array([[1, 1], [0, 1.5], [1, 0.5], [4, 4]])
    labels = np.array([0, 1, 1, 2])
    result = zero_shot_recognition(images, AUDIO, labels, AUDIO_LABELS, 3)
    np.testing.assert_array_equal(result["predicted"], [0, 1, 0, 2])
    assert result["accuracy"] == pytest.approx(3 / 4)
    np.testing.assert_allclose(result["per_class_accuracy"], [1, 0.5, 1])
    assert result["mean_class_accuracy"] == pytest.approx(2.5 / 3)
    assert result["distances"][0, 1] == pytest.approx(np.sqrt(5))


def test_exclude_own_clip_hand_computed():
    # Paired rows: image i and audio i are the same clip.
    images = np.array([[1.8, 0], [0.1, 0], [0, 3.9], [0.5, 1.9], [5, 5]])
    with_own = zero_shot_recognition(images, AUDIO, AUDIO_LABELS, AUDIO_LABELS, 3)
    np.testing.assert_array_equal(with_own["predicted"], [0, 0, 1, 1, 2])
    without = zero_shot_recognition(images, AUDIO, AUDIO_LABELS, AUDIO_LABELS, 3, exclude_own=True)
    # Image 3's own-class prototype becomes audio 2 = (0, 4): distance sqrt(.25 + 4.41) > the
    # distance sqrt(.25 + 3.61) to prototype 0; image 4's class has one clip -> no prototype.
    np.testing.assert_array_equal(without["predicted"], [0, 0, 1, 0, 1])
    assert without["distances"][0, 0] == pytest.approx(0.2)    # own prototype = audio 1 = (2, 0)
    assert without["distances"][3, 1] == pytest.approx(np.sqrt(0.25 + 4.41))
    assert np.isinf(without["distances"][4, 2])
    assert without["accuracy"] == pytest.approx(3 / 5)


def test_exclude_own_needs_paired_rows():
    with pytest.raises(ValueError, match="paired"):
        prototype_distances(AUDIO[:3], AUDIO, AUDIO_LABELS[:3], AUDIO_LABELS, 3, exclude_own=True)


def test_cosine_option_differs_from_euclidean():
    audio = np.array([[1.0, 0.0], [10.0, 10.0]])
    image = np.array([[0.5, 0.5]])
    euclid = zero_shot_recognition(image, audio, np.array([1]), np.array([0, 1]), 2)
    cosine = zero_shot_recognition(image, audio, np.array([1]), np.array([0, 1]), 2, metric="cosine")
    assert euclid["predicted"][0] == 0 and cosine["predicted"][0] == 1
    assert cosine["distances"][0, 1] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="unknown metric"):
        zero_shot_recognition(image, audio, np.array([1]), np.array([0, 1]), 2, metric="l1")


def test_confusion_matrix_and_label_encoding():
    np.testing.assert_array_equal(confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2),
                                  [[1, 0], [1, 1]])
    codes, classes = encode_labels(["Tabla", "Shofar", "Tabla"])
    assert classes == ["Shofar", "Tabla"] and codes.tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="not among"):
        encode_labels(["Gong"], classes=["Tabla"])


def test_harmonic_mean_edge_cases():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(0.8, 0.0) == 0.0
    assert harmonic_mean(0.5, 0.5) == pytest.approx(0.5)
    assert harmonic_mean(0.686, 0.394) == pytest.approx(0.5005, abs=1e-3)  # the paper's 50.1


# Classes 0, 1 seen; 2 unseen. Switch points d_unseen - d_seen: 0.2, 0.05, 0.05, 0.4.
GZSL_D = np.array([[0.1, 0.5, 0.3], [0.6, 0.2, 0.25], [0.3, 0.4, 0.35], [0.5, 0.2, 0.6]])
GZSL_LABELS = np.array([0, 1, 2, 2])
SEEN = np.array([True, True, False])


def test_gzsl_hand_computed():
    plain = gzsl_scores(GZSL_D, GZSL_LABELS, SEEN, 0.0)
    assert (plain["seen"], plain["unseen"], plain["harmonic_mean"]) == (1.0, 0.0, 0.0)
    calibrated = gzsl_scores(GZSL_D, GZSL_LABELS, SEEN, 0.1)
    assert calibrated["seen"] == pytest.approx(0.5)      # class 0 right, class 1 lost
    assert calibrated["unseen"] == pytest.approx(0.5)
    assert calibrated["harmonic_mean"] == pytest.approx(0.5)
    assert gzsl_scores(GZSL_D, GZSL_LABELS, SEEN, 1.0)["harmonic_mean"] == 0.0


def test_tune_calibration_finds_the_best_step_exactly():
    gamma, curve = tune_calibration(GZSL_D, GZSL_LABELS, SEEN)
    np.testing.assert_allclose(curve["gamma"], [0.05 - 1, 0.125, 0.3, 1.4])
    np.testing.assert_allclose(curve["harmonic_mean"], [0, 0.5, 0, 0])
    assert gamma == pytest.approx(0.125)


@pytest.mark.parametrize("average", ["class", "sample"])
def test_tuning_curve_agrees_with_direct_scoring(average):
    rng = np.random.default_rng(0)
    distances = rng.uniform(0, 1, (200, 7))
    labels = rng.integers(0, 7, 200)
    seen = np.array([True] * 4 + [False] * 3)
    gamma, curve = tune_calibration(distances, labels, seen, average=average)
    for g, s, u in zip(curve["gamma"], curve["seen"], curve["unseen"], strict=True):
        direct = gzsl_scores(distances, labels, seen, g, average=average)
        assert (direct["seen"], direct["unseen"]) == pytest.approx((s, u))
    best = gzsl_scores(distances, labels, seen, gamma, average=average)["harmonic_mean"]
    assert best == pytest.approx(curve["harmonic_mean"].max())
    assert best >= gzsl_scores(distances, labels, seen, 0.0, average=average)["harmonic_mean"]


def test_gamma_is_chosen_on_validation_never_test():
    # Validation favours gamma ~0.125; on this test set gamma = 0 would be better.
    test_d = np.array([[0.1, 0.9, 0.15], [0.9, 0.1, 0.5], [0.9, 0.9, 0.1]])
    test_labels = np.array([0, 1, 2])
    result = calibrated_gzsl(GZSL_D, GZSL_LABELS, SEEN, test_d, test_labels, SEEN, selected_on="val_unseen")
    assert result["gamma"] == pytest.approx(0.125) and result["gamma_selected_on"] == "val_unseen"
    expected = gzsl_scores(test_d, test_labels, SEEN, 0.125)
    assert result["harmonic_mean"] == pytest.approx(expected["harmonic_mean"])
    assert result["uncalibrated"]["harmonic_mean"] == 1.0 > result["harmonic_mean"]
    # Changing the test set never changes gamma.
    other = calibrated_gzsl(GZSL_D, GZSL_LABELS, SEEN, test_d[::-1], test_labels[::-1], SEEN, selected_on="v")
    assert other["gamma"] == result["gamma"]


def test_gzsl_needs_both_groups():
    with pytest.raises(ValueError, match="both"):
        gzsl_scores(GZSL_D[:2], GZSL_LABELS[:2], SEEN)
    with pytest.raises(ValueError, match="both"):
        tune_calibration(GZSL_D, GZSL_LABELS, np.array([True, True, True]))
    with pytest.raises(ValueError, match="no samples"):
        mean_class_accuracy(np.array([], dtype=int), np.array([], dtype=int), 3)
