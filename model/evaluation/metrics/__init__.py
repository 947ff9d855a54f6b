"""Pure, vectorised evaluation metrics (numpy/torch on the CPU).

* :mod:`model.evaluation.metrics.retrieval` -- cross-modal retrieval, LLINet and standard protocols.
* :mod:`model.evaluation.metrics.recognition` -- zero-shot / GZSL recognition with audio prototypes.
* :mod:`model.evaluation.metrics.localization` -- LLINet 16x16 and LVS/EZ-VSL 224x224 localisation.
* :mod:`model.evaluation.metrics.masks` -- COCO masks (pycocotools) to the protocols' grids.

Definitions: each module's docstring (and docs/evaluation.md).
"""
from model.evaluation.metrics.localization import (
                                        LLINET_K_VALUES,
                                        llinet_localization,
                                        lvs_localization,
                                        select_llinet_k,
)
from model.evaluation.metrics.recognition import (
                                        encode_labels,
                                        gzsl_scores,
                                        harmonic_mean,
                                        tune_calibration,
                                        zero_shot_recognition,
)
from model.evaluation.metrics.retrieval import cosine_similarity, rank_queries, retrieval_metrics, standard_retrieval

__all__ = [
    "LLINET_K_VALUES", "cosine_similarity", "encode_labels", "gzsl_scores", "harmonic_mean",
    "llinet_localization", "lvs_localization", "rank_queries", "retrieval_metrics",
    "select_llinet_k", "standard_retrieval", "tune_calibration", "zero_shot_recognition",
]
