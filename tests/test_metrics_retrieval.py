"""Retrieval metrics: hand-computed cases, properties, chunked == full == naive."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.evaluation.metrics.retrieval import (
    OFFICIAL_COLUMN,
    first_query_per_class,
    llinet_map,
    llinet_map_draws,
    naive_rank_queries,
    per_class_ap,
    rank_queries,
    retrieval_metrics,
    standard_retrieval,
)


def test_ap_hand_computed_single_query():
    # Ranking A B A B A: relevant at 1, 3, 5 -> AP = (1/1 + 2/3 + 3/5) / 3.
    ranking = rank_queries([[0.9, 0.8, 0.7, 0.6, 0.5]], ["A"], list("ABABA"))
    assert ranking.ap[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert ranking.first_rank[0] == 1
    assert ranking.n_relevant[0] == 3


def test_tie_between_relevant_and_irrelevant_counts_against_the_query():
    # A and B tie at 0.5: B is ranked first -> relevant at 2 and 3.
    ranking = rank_queries([[0.5, 0.5, 0.1]], ["A"], ["A", "B", "A"])
    assert ranking.ap[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert ranking.first_rank[0] == 2  # R@1 is a miss


def test_tie_among_relevant_items_does_not_matter():
    ranking = rank_queries([[0.5, 0.5, 0.9]], ["A"], ["A", "A", "B"])
    assert ranking.ap[0] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_constant_scores_give_the_lower_bound_not_a_perfect_score():
    # 2 relevant of 6, all tied: relevant land at 5 and 6.
    ranking = rank_queries(np.zeros((1, 6)), ["A"], list("ABBBBA"))
    assert ranking.ap[0] == pytest.approx((1 / 5 + 2 / 6) / 2)
    assert ranking.first_rank[0] == 5


def test_class_of_one_sample():
    ranking = rank_queries([[0.1, 0.5, 0.3]], ["A"], ["A", "B", "B"])
    assert ranking.ap[0] == pytest.approx(1 / 3)
    assert ranking.first_rank[0] == 3


# Images (rows) x audio (columns), classes A A B, in manifest order.
HAND_SCORES = np.array([[0.9, 0.1, 0.5],    # q0 A: A(.9) B(.5) A(.1) -> AP (1 + 2/3)/2
                        [0.2, 0.3, 0.8],    # q1 A: B A A -> AP (1/2 + 2/3)/2
                        [0.7, 0.4, 0.6]])   # q2 B: A B A -> AP 1/2
HAND_LABELS = ["A", "A", "B"]


def test_protocols_hand_computed():
    ranking = rank_queries(HAND_SCORES, HAND_LABELS, HAND_LABELS)
    ap = [(1 + 2 / 3) / 2, (1 / 2 + 2 / 3) / 2, 1 / 2]
    np.testing.assert_allclose(ranking.ap, ap)
    # LLINet: pinned queries q0 (first A) and q2 (first B).
    assert llinet_map(ranking, HAND_LABELS) == pytest.approx((ap[0] + ap[2]) / 2)
    standard = standard_retrieval(ranking, HAND_LABELS)
    assert standard["map_micro"] == pytest.approx(np.mean(ap))
    assert standard["map_macro"] == pytest.approx(((ap[0] + ap[1]) / 2 + ap[2]) / 2)
    assert standard["r1"] == pytest.approx(1 / 3)   # first ranks 1, 2, 2
    assert standard["r5"] == standard["r10"] == 1.0
    assert per_class_ap(ranking, HAND_LABELS) == pytest.approx({"A": (ap[0] + ap[1]) / 2, "B": ap[2]})


def test_audio_to_image_uses_columns_as_queries():
    metrics = retrieval_metrics(HAND_SCORES, HAND_LABELS, HAND_LABELS, n_draws=10)
    # Column queries: a0 (A) scores [.9 .2 .7] -> A B A -> 5/6; a2 (B) [.5 .8 .6] -> A B A -> 1/2.
    assert metrics["audio_to_image"]["llinet"]["map"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    a2i = rank_queries(HAND_SCORES, HAND_LABELS, HAND_LABELS, transpose=True)
    np.testing.assert_allclose(a2i.ap, naive_rank_queries(HAND_SCORES.T, HAND_LABELS, HAND_LABELS).ap)


def test_pinned_query_is_the_first_of_its_class_in_manifest_order():
    labels = ["B", "A", "B", "A"]
    assert first_query_per_class(labels) == {"B": 0, "A": 1}
    scores = np.array([[0.1, 0.9, 0.2, 0.8],   # q0 B: A A B B -> positions 3,4
                       [0.9, 0.1, 0.8, 0.2],   # q1 A: B B A A
                       [0.1, 0.2, 0.9, 0.8],   # q2 B: B A B A -> positions 1,3
                       [0.1, 0.9, 0.2, 0.8]])  # q3 A: A A -> perfect
    ranking = rank_queries(scores, labels, labels)
    expected = (ranking.ap[0] + ranking.ap[1]) / 2
    assert llinet_map(ranking, labels) == pytest.approx(expected)
    assert expected != pytest.approx((ranking.ap[2] + ranking.ap[3]) / 2)


def test_perfect_ranking_scores_one():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, 60)
    scores = (labels[:, None] == labels[None, :]) + rng.uniform(0, 0.5, (60, 60))
    metrics = retrieval_metrics(scores, labels, labels, n_draws=20)
    for direction in ("image_to_audio", "audio_to_image"):
        assert metrics[direction]["llinet"]["map"] == 1.0
        assert metrics[direction]["llinet"]["map_draws_std"] == 0.0
        for key in ("map_micro", "map_macro", "r1", "r5", "r10"):
            assert metrics[direction]["standard"][key] == 1.0


def test_gallery_permutation_invariance_and_query_permutation_equivariance():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 50)
    scores = rng.standard_normal((50, 50)).round(1)  # rounding creates ties
    base = rank_queries(scores, labels, labels)
    perm = rng.permutation(50)
    gallery_permuted = rank_queries(scores[:, perm], labels, labels[perm])
    np.testing.assert_allclose(gallery_permuted.ap, base.ap)
    np.testing.assert_array_equal(gallery_permuted.first_rank, base.first_rank)
    query_permuted = rank_queries(scores[perm], labels[perm], labels)
    np.testing.assert_allclose(query_permuted.ap, base.ap[perm])
    assert standard_retrieval(query_permuted, labels[perm]) == pytest.approx(
        standard_retrieval(base, labels))


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 10_000])
def test_chunked_equals_full_equals_naive(chunk_rows):
    rng = np.random.default_rng(3)
    q_labels = rng.integers(0, 6, 130)
    g_labels = rng.integers(0, 6, 90)
    scores = rng.standard_normal((130, 90)).astype(np.float32).round(1)
    naive = naive_rank_queries(scores, q_labels, g_labels)
    for transpose in (False, True):
        matrix = scores.T.copy() if transpose else scores
        got = rank_queries(matrix, q_labels, g_labels, transpose=transpose,
                           chunk_rows=chunk_rows, workers=2)
        np.testing.assert_allclose(got.ap, naive.ap, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(got.first_rank, naive.first_rank)


def test_torch_input_matches_numpy():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 20)
    scores = rng.standard_normal((20, 20)).astype(np.float32)
    np.testing.assert_allclose(rank_queries(torch.from_numpy(scores), labels, labels).ap,
                               rank_queries(scores, labels, labels).ap)


def test_random_query_draws():
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1, 2], [10, 20, 5])
    scores = rng.standard_normal((35, 35))
    ranking = rank_queries(scores, labels, labels)
    draws = llinet_map_draws(ranking, labels, n_draws=4000, seed=0)
    assert draws.shape == (4000,)
    # Expected value: mean over classes of each class's mean AP.
    class_means = np.mean([ranking.ap[labels == c].mean() for c in range(3)])
    assert draws.mean() == pytest.approx(class_means, abs=0.01)
    assert draws.std() > 0
    np.testing.assert_array_equal(draws, llinet_map_draws(ranking, labels, n_draws=4000, seed=0))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="no item in the gallery"):
        rank_queries([[0.1, 0.2]], ["C"], ["A", "B"])
    with pytest.raises(ValueError, match="do not match"):
        rank_queries(np.zeros((2, 3)), ["A", "A"], ["A", "B"])
    with pytest.raises(ValueError, match="NaN"):
        rank_queries([[np.nan, 0.2]], ["A"], ["A", "B"])


def test_official_column_names_follow_the_direction_trap():
    # The official "mAP I2A" ranks images with audio queries: our audio_to_image.
    assert OFFICIAL_COLUMN[("audio_to_image", "llinet_map")].startswith("mAP I2A")
    assert OFFICIAL_COLUMN[("image_to_audio", "r1")].startswith("I_r1")
