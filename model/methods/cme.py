"""CME: Surís, Duarte, Salvador, Torres & Giró-i-Nieto, "Cross-modal Embeddings for Video and Audio
Retrieval", ECCV 2018 workshops.

Two branches embed visual and audio features into one space trained with a cosine similarity
loss on positive pairs (1 − cos) and negative pairs (max(0, cos − margin)), regularised by a
classification loss on the embeddings.

Image↔audio here: the positives are the batch's pairs, the negatives every other-class pair of
the batch (each term averaged over its pairs); one linear classifier over the seen classes,
shared by both embeddings, gives the classification term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method, cosine_scores, different_class
from model.network.llinet import LLINet

MARGIN = 0.1                 # of the negative-pair term (our choice)
CLASSIFICATION_WEIGHT = 1.0  # (our choice)


def cosine_pair_loss(v: torch.Tensor, a: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """mean over pairs of (1 − cos) + mean over other-class pairs of max(0, cos − margin)."""
    scores = cosine_scores(v, a)
    negatives = different_class(labels).float()
    positive = (1.0 - scores.diagonal()).mean()
    negative = (F.relu(scores - margin) * negatives).sum() / negatives.sum().clamp(min=1.0)
    return positive + negative


class CME(Method):
    name = "cme"
    gathered = ("v", "a", "image_logits", "audio_logits")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        self.classifier = nn.Linear(net.config.embed_dim, n_classes)

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**out, "image_logits": self.classifier(out["v"]), "audio_logits": self.classifier(out["a"])}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pairs = cosine_pair_loss(out["v"], out["a"], labels)
        classification = (F.cross_entropy(out["image_logits"].float(), labels)
                          + F.cross_entropy(out["audio_logits"].float(), labels))
        total = pairs + CLASSIFICATION_WEIGHT * classification
        return total, {"match": pairs.detach(), "attention": torch.zeros_like(total.detach()),
                       "classification": classification.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return cosine_pair_loss(out["v"], out["a"], labels)
