"""DSCMR: Zhen, Hu, Wang & Peng, "Deep Supervised Cross-Modal Retrieval", CVPR 2019.

Three terms on the common representations U (images) and V (texts, here audio) of a batch of n
pairs, with a linear classifier P shared by both modalities and Y the one-hot labels:

* label space: J1 = (1/n)‖PᵀU − Y‖_F + (1/n)‖PᵀV − Y‖_F;
* common space: J2 = (1/n²) Σ_ij [log(1 + e^Γij) − S_ij Γ_ij] for the cross-modal Γ_ij = ½cos(u_i, v_j),
  plus the same for the image-image Φ and audio-audio Θ pairs, with S_ij = 1 for the same class;
* modality invariance: J3 = (1/n)‖U − V‖_F;

J = J1 + λ·J2 + η·J3. P and Y cover the seen classes only.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method
from model.network.llinet import LLINet

LAMBDA = 1e-3   # weight of the common-space term J2 (our choice; the paper tunes it)
ETA = 0.1       # weight of the modality-invariance term J3 (our choice; the paper tunes it)


def label_space_loss(image_logits: torch.Tensor, audio_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """J1: Frobenius distance of each modality's linear class predictions to the one-hot labels, over n."""
    target = F.one_hot(labels, image_logits.shape[1]).float()
    n = len(labels)
    return (torch.linalg.matrix_norm(image_logits.float() - target)
            + torch.linalg.matrix_norm(audio_logits.float() - target)) / n


def pairwise_likelihood(x: torch.Tensor, y: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """(1/n²) Σ_ij log(1 + e^Γij) − S_ij Γ_ij with Γ = ½ cos(x_i, y_j)."""
    gamma = 0.5 * F.normalize(x.float(), dim=1) @ F.normalize(y.float(), dim=1).T
    return (F.softplus(gamma) - same * gamma).mean()


def common_space_loss(v: torch.Tensor, a: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """J2: cross-modal, image-image and audio-audio pairwise negative log-likelihoods."""
    same = (labels[:, None] == labels[None, :]).float()
    return pairwise_likelihood(v, a, same) + pairwise_likelihood(v, v, same) + pairwise_likelihood(a, a, same)


def invariance_loss(v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """J3 = ‖U − V‖_F / n."""
    return torch.linalg.matrix_norm(v.float() - a.float()) / len(v)


class DSCMR(Method):
    name = "dscmr"
    gathered = ("v", "a", "image_logits", "audio_logits")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        self.classifier = nn.Linear(net.config.embed_dim, n_classes, bias=False)

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**out, "image_logits": self.classifier(out["v"]), "audio_logits": self.classifier(out["a"])}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        label_space = label_space_loss(out["image_logits"], out["audio_logits"], labels)
        common = common_space_loss(out["v"], out["a"], labels)
        invariance = invariance_loss(out["v"], out["a"])
        total = label_space + LAMBDA * common + ETA * invariance
        return total, {"match": common.detach(), "attention": torch.zeros_like(total.detach()),
                       "label_space": label_space.detach(), "invariance": invariance.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return LAMBDA * common_space_loss(out["v"], out["a"], labels) + ETA * invariance_loss(out["v"], out["a"])
