"""Small validation metrics used for model selection during training.

Pure functions over embeddings. They pick the best epoch on the validation
split only; the reported test metrics live in ``model.evaluation.metrics`` / llinet-eval.
Similarity is cosine (the training objective's); recognition uses the
Euclidean distance between the raw image embedding v and the class prototypes
(mean of the class's L2-normalised audio embeddings), as the paper's zero-shot
recognition, the authors' validation and llinet-eval's ``published`` variant do.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def average_precision(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """Per query AP = (1/n) Σ_k k / rank_k over its n relevant items. scores/relevant: [Q, G]."""
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    hits = torch.gather(relevant.float(), 1, order)
    cumulative = torch.cumsum(hits, dim=1)
    ranks = torch.arange(1, scores.shape[1] + 1, dtype=torch.float32, device=scores.device)
    precision_at_hits = (cumulative / ranks) * hits
    return precision_at_hits.sum(dim=1) / hits.sum(dim=1).clamp(min=1.0)


def retrieval_map(queries: torch.Tensor, gallery: torch.Tensor, query_labels: torch.Tensor,
                  gallery_labels: torch.Tensor) -> float:
    """Macro mAP (mean over classes of the mean AP of that class's queries), cosine similarity."""
    scores = F.normalize(queries.float(), dim=1) @ F.normalize(gallery.float(), dim=1).T
    return scores_map(scores, query_labels, gallery_labels)


def scores_map(scores: torch.Tensor, query_labels: torch.Tensor, gallery_labels: torch.Tensor) -> float:
    """Macro mAP from a [queries, gallery] score matrix (a method's own similarity)."""
    ap = average_precision(scores.float(), query_labels[:, None] == gallery_labels[None, :])
    per_class = [ap[query_labels == c].mean() for c in torch.unique(query_labels)]
    return float(torch.stack(per_class).mean())


def prototype_accuracy(images: torch.Tensor, audio: torch.Tensor, image_labels: torch.Tensor,
                       audio_labels: torch.Tensor) -> float:
    """Each raw image embedding goes to the nearest (Euclidean) class prototype = mean audio embedding."""
    classes = torch.unique(audio_labels)
    prototypes = torch.stack([audio[audio_labels == c].float().mean(0) for c in classes])
    distances = torch.cdist(images.float(), prototypes)
    predicted = classes[distances.argmin(dim=1)]
    return float((predicted == image_labels).float().mean())
