"""Cross-modal retrieval metrics: the LLINet protocol and the standard one.

Definitions follow LLINet (Jia et al., ACM MM 2020) and the authors' public code.

Conventions used everywhere in this module

* ``scores[q, g]`` is the similarity of query ``q`` to gallery item ``g``;
  larger means more similar. A direction is named query→gallery:
  "image→audio" means image queries ranking the audio gallery. (The official
  LLINet code labels one-query-per-class mAP the other way round; see
  :data:`OFFICIAL_COLUMN`.)
* A gallery item is relevant to a query when it has the query's class.
* Average precision of one query with ``n`` relevant items:
  ``AP = (1/n) * sum_k k / pos_k`` where ``pos_k`` is the 1-based rank of the
  k-th relevant item.
* Ties: a non-relevant item whose score EQUALS a relevant item's score is
  ranked ahead of it (pessimistic). A model that outputs constant scores
  therefore gets the chance-level lower bound, never a perfect score. Ties
  among relevant items do not change AP.

Speed: the only O(n_q * n_g log n_g) step is a row sort (numpy's SIMD sort,
run in threads over row chunks, which release the GIL). Relevant scores are
then located in the sorted rows with a batched binary search, so AP and the
first-hit rank of every query come from one pass. Chunking bounds memory to a
few chunk-sized copies whatever the matrix size.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

#: Class labels, one per row: a list or a 1-D array (the embedding files hold arrays).
Labels = Sequence[Any] | np.ndarray

DEFAULT_CHUNK_ROWS = 256
DEFAULT_DRAWS = 1000
RECALL_KS = (1, 5, 10)

#: Which column of the official code's printout each of our numbers matches.
#: The official ``calc_mAP(image, audio, y)`` ("mAP I2A") samples one AUDIO query
#: per class and ranks images, i.e. it is audio→image in query→gallery naming.
OFFICIAL_COLUMN = {
    ("audio_to_image", "llinet_map"): "mAP I2A (paper: image→audio mAP)",
    ("image_to_audio", "llinet_map"): "mAP A2I (paper: audio→image mAP)",
    ("image_to_audio", "r1"): "I_r1 (paper: image→audio R@1)",
    ("audio_to_image", "r1"): "A_r1 (paper: audio→image R@1)",
}


@dataclass(frozen=True)
class QueryRanking:
    """Per-query results of ranking a gallery."""

    ap: np.ndarray          # (n_q,) float64 average precision
    first_rank: np.ndarray  # (n_q,) int64, 1-based rank of the best relevant item
    n_relevant: np.ndarray  # (n_q,) int64, relevant gallery items per query


def _as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def _chunk_ap(block: np.ndarray, labels: np.ndarray, gallery_by_class: dict[Any, np.ndarray],
              owned: bool) -> tuple[np.ndarray, np.ndarray]:
    """AP and first-hit rank for the query rows in ``block`` (rows x gallery).

    ``owned``: ``block`` is a private copy and may be sorted in place.
    """
    if not np.isfinite(block).all():
        raise ValueError("similarity scores contain NaN or infinity")
    n_gallery = block.shape[1]
    groups = []  # (rows, relevant scores ascending) per class, taken before any sorting
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        cols = gallery_by_class[cls]
        relevant = block[:, cols] if len(rows) == len(labels) else block[rows][:, cols]
        groups.append((rows, np.ascontiguousarray(np.sort(relevant, axis=1))))
    if owned:
        block.sort(axis=1)  # ascending, in place: saves a copy of the chunk
        sorted_rows = block
    else:
        sorted_rows = np.sort(block, axis=1)
    ap = np.empty(len(labels), dtype=np.float64)
    first = np.empty(len(labels), dtype=np.int64)
    for rows, rel_asc in groups:
        n_rel = rel_asc.shape[1]
        rel_desc = rel_asc[:, ::-1].copy()  # torch rejects negative strides
        sorted_sub = sorted_rows if len(rows) == len(labels) else sorted_rows[rows]
        # Items (any) scoring >= each relevant score, minus relevant items doing so,
        # = non-relevant items ranked ahead of it (ties pessimistic).
        at_or_above_all = n_gallery - torch.searchsorted(
            torch.from_numpy(sorted_sub), torch.from_numpy(rel_desc), side="left").numpy()
        at_or_above_rel = n_rel - torch.searchsorted(
            torch.from_numpy(rel_asc), torch.from_numpy(rel_desc), side="left").numpy()
        k = np.arange(1, n_rel + 1)
        pos = k + (at_or_above_all - at_or_above_rel)
        ap[rows] = (k / pos).mean(axis=1)
        first[rows] = pos[:, 0]
    return ap, first


def rank_queries(scores: Any, query_labels: Labels, gallery_labels: Labels, *,
                 transpose: bool = False, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                 workers: int | None = None) -> QueryRanking:
    """Rank the gallery for every query; returns per-query AP and first-hit rank.

    ``scores`` is (n_query, n_gallery), numpy or torch. With ``transpose=True``
    the columns are the queries (so one matrix serves both directions without
    materialising its transpose). Rows are processed ``chunk_rows`` at a time.
    """
    matrix = _as_numpy(scores)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {matrix.shape}")
    view = matrix.T if transpose else matrix
    q_labels = np.asarray(query_labels)
    g_labels = np.asarray(gallery_labels)
    if view.shape != (len(q_labels), len(g_labels)):
        raise ValueError(f"scores of shape {view.shape} (queries x gallery) do not match "
                         f"{len(q_labels)} query and {len(g_labels)} gallery labels")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    gallery_by_class = {cls: np.flatnonzero(g_labels == cls) for cls in np.unique(g_labels)}
    absent = sorted(set(np.unique(q_labels).tolist()) - set(gallery_by_class))
    if absent:
        raise ValueError(f"query class(es) {absent} have no item in the gallery: AP undefined")

    starts = range(0, len(q_labels), chunk_rows)

    def work(start: int) -> tuple[np.ndarray, np.ndarray]:
        rows = view[start:start + chunk_rows]
        block = np.ascontiguousarray(rows)
        owned = not np.shares_memory(block, matrix)
        return _chunk_ap(block, q_labels[start:start + chunk_rows], gallery_by_class, owned)

    n_workers = workers or min(4, os.cpu_count() or 1)
    if n_workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(n_workers) as pool:
            parts = list(pool.map(work, starts))
    else:
        parts = [work(s) for s in starts]
    n_relevant = np.array([len(gallery_by_class[c]) for c in q_labels], dtype=np.int64)
    if not parts:
        return QueryRanking(np.empty(0), np.empty(0, dtype=np.int64), n_relevant)
    return QueryRanking(np.concatenate([p[0] for p in parts]),
                        np.concatenate([p[1] for p in parts]), n_relevant)


def first_query_per_class(labels: Labels) -> dict[Any, int]:
    """Index of the first item of each class in the given (manifest) order."""
    first: dict[Any, int] = {}
    for index, cls in enumerate(np.asarray(labels).tolist()):
        first.setdefault(cls, index)
    return first


def llinet_map(ranking: QueryRanking, query_labels: Labels,
               pinned: dict[Any, int] | None = None) -> float:
    """LLINet protocol mAP: one query per class, AP averaged over the classes.

    The query of each class is pinned to its first item in the given order
    (the official code took whatever an unstable sort put first).
    """
    pinned = first_query_per_class(query_labels) if pinned is None else pinned
    if not pinned:
        raise ValueError("no queries")
    return float(np.mean([ranking.ap[i] for i in pinned.values()]))


def llinet_map_draws(ranking: QueryRanking, query_labels: Labels, *,
                     n_draws: int = DEFAULT_DRAWS, seed: int = 0) -> np.ndarray:
    """The LLINet mAP for ``n_draws`` random choices of the one query per class."""
    labels = np.asarray(query_labels)
    rng = np.random.default_rng(seed)
    per_class = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        per_class.append(ranking.ap[members[rng.integers(0, len(members), size=n_draws)]])
    if not per_class:
        raise ValueError("no queries")
    return np.mean(per_class, axis=0)


def standard_retrieval(ranking: QueryRanking, query_labels: Labels,
                       ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Every item a query: micro mAP (over queries), macro mAP (over classes), R@K.

    R@K = fraction of queries with a relevant item among their top K.
    """
    labels = np.asarray(query_labels)
    if len(labels) == 0:
        raise ValueError("no queries")
    class_means = [ranking.ap[labels == cls].mean() for cls in np.unique(labels)]
    out = {"map_micro": float(ranking.ap.mean()), "map_macro": float(np.mean(class_means))}
    for k in ks:
        out[f"r{k}"] = float(np.mean(ranking.first_rank <= k))
    return out


def per_class_ap(ranking: QueryRanking, query_labels: Labels) -> dict[Any, float]:
    """Mean AP of each class's queries (standard protocol), keyed by class."""
    labels = np.asarray(query_labels)
    return {cls: float(ranking.ap[labels == cls].mean()) for cls in np.unique(labels).tolist()}


def direction_metrics(ranking: QueryRanking, query_labels: Labels, *,
                      n_draws: int = DEFAULT_DRAWS, seed: int = 0) -> dict[str, Any]:
    """All retrieval numbers of one direction, from one ranking pass."""
    draws = llinet_map_draws(ranking, query_labels, n_draws=n_draws, seed=seed)
    standard = standard_retrieval(ranking, query_labels)
    return {
        "llinet": {"map": llinet_map(ranking, query_labels), "r1": standard["r1"],
                   "map_draws_mean": float(draws.mean()), "map_draws_std": float(draws.std(ddof=1))
                   if n_draws > 1 else 0.0, "n_draws": n_draws},
        "standard": standard,
        "per_class_ap": {str(k): v for k, v in per_class_ap(ranking, query_labels).items()},
    }


def retrieval_metrics(scores: Any, image_labels: Labels, audio_labels: Labels, *,
                      chunk_rows: int = DEFAULT_CHUNK_ROWS, n_draws: int = DEFAULT_DRAWS,
                      seed: int = 0, workers: int | None = None) -> dict[str, Any]:
    """Both directions from one image x audio similarity matrix.

    ``scores[i, a]`` = similarity of image ``i`` and audio clip ``a``; label
    order is the manifest order (it decides the pinned LLINet queries).
    """
    i2a = rank_queries(scores, image_labels, audio_labels, chunk_rows=chunk_rows, workers=workers)
    a2i = rank_queries(scores, audio_labels, image_labels, transpose=True,
                       chunk_rows=chunk_rows, workers=workers)
    return {
        "image_to_audio": direction_metrics(i2a, image_labels, n_draws=n_draws, seed=seed),
        "audio_to_image": direction_metrics(a2i, audio_labels, n_draws=n_draws, seed=seed),
    }


def cosine_similarity(a: Any, b: Any, *, chunk_rows: int = 4096) -> np.ndarray:
    """Cosine similarity matrix (float32) of row vectors, computed in row chunks."""
    left = torch.as_tensor(_as_numpy(a), dtype=torch.float32)
    right = torch.nn.functional.normalize(torch.as_tensor(_as_numpy(b), dtype=torch.float32), dim=1)
    out = np.empty((left.shape[0], right.shape[0]), dtype=np.float32)
    for start in range(0, left.shape[0], chunk_rows):
        block = torch.nn.functional.normalize(left[start:start + chunk_rows], dim=1)
        out[start:start + chunk_rows] = (block @ right.T).numpy()
    return out


def naive_rank_queries(scores: Any, query_labels: Labels, gallery_labels: Labels) -> QueryRanking:
    """Reference implementation: one full stable sort per query, in Python.

    Used by the tests (an independent computation of the same definition) and
    by bench/metrics_speed.py as the baseline. Ties: a lexicographic sort on
    (score descending, relevant last) puts tied non-relevant items first.
    """
    matrix = _as_numpy(scores)
    g_labels = np.asarray(gallery_labels)
    aps, firsts, counts = [], [], []
    for row, cls in zip(matrix, np.asarray(query_labels), strict=True):
        relevant = g_labels == cls
        order = np.lexsort((relevant, -row))
        positions = np.flatnonzero(relevant[order]) + 1
        k = np.arange(1, len(positions) + 1)
        aps.append(float(np.mean(k / positions)))
        firsts.append(int(positions[0]))
        counts.append(len(positions))
    return QueryRanking(np.array(aps), np.array(firsts, dtype=np.int64), np.array(counts, dtype=np.int64))
