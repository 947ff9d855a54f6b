"""CMPM: Zhang & Lu, "Deep Cross-Modal Projection Learning for Image-Text Matching", ECCV 2018.

Cross-modal projection matching (CMPM): the softmax over a batch of each image's scalar
projections onto the normalised audio embeddings, p_ij, is pulled towards the true matching
distribution q_ij (uniform over the same-class clips) by KL(p ‖ q), both directions
(:func:`model.methods.common.cmpm_loss`). Cross-modal projection classification (CMPC): each
embedding is projected onto its pair's normalised embedding, x̂_i = (x_iᵀ ȳ_i) ȳ_i, and classified
by a norm-softmax classifier (‖W_c‖ = 1, shared by both modalities) over the seen classes.
L = CMPM + CMPC.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from model.methods.base import Method
from model.methods.common import NormSoftmax, cmpm_loss, project_onto
from model.network.llinet import LLINet


class CMPM(Method):
    name = "cmpm"
    gathered = ("v", "a", "image_logits", "audio_logits")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        self.classifier = NormSoftmax(net.config.embed_dim, n_classes)

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v, a = out["v"], out["a"]
        return {**out, "image_logits": self.classifier(project_onto(v, a)),
                "audio_logits": self.classifier(project_onto(a, v))}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        matching = cmpm_loss(out["v"], out["a"], labels)
        classification = (F.cross_entropy(out["image_logits"].float(), labels)
                          + F.cross_entropy(out["audio_logits"].float(), labels))
        total = matching + classification
        return total, {"match": matching.detach(), "attention": torch.zeros_like(total.detach()),
                       "classification": classification.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return cmpm_loss(out["v"], out["a"], labels)
