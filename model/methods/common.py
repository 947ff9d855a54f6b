"""Pieces several methods share: a weight-normalised classifier and CMPM."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Added to the true matching distribution before its log (CMPM, Zhang & Lu 2018).
CMPM_EPSILON = 1e-8


class NormSoftmax(nn.Module):
    """Class logits x · W_c / ‖W_c‖ (no bias): the "norm-softmax" classifier of CMPM's CMPC."""

    def __init__(self, embed_dim: int, n_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, embed_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ F.normalize(self.weight, dim=1).T


def cmpm_loss(image: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-modal projection matching (Zhang & Lu, ECCV 2018), both directions.

    p_ij = softmax_j(x_iᵀ ȳ_j) with ȳ = y/‖y‖; q_ij = 1[same class] / Σ_k 1[same class];
    L = mean_i Σ_j p_ij log(p_ij / (q_ij + ε)), image→audio plus audio→image.
    """
    same = (labels[:, None] == labels[None, :]).float()
    q = same / same.sum(dim=1, keepdim=True)
    total = image.new_zeros(())
    for x, y in ((image, audio), (audio, image)):
        logits = x.float() @ F.normalize(y.float(), dim=1).T
        log_p = F.log_softmax(logits, dim=1)
        total = total + (log_p.exp() * (log_p - torch.log(q + CMPM_EPSILON))).sum(dim=1).mean()
    return total


def project_onto(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x̂_i = (x_iᵀ ȳ_i) ȳ_i: each x projected onto its own pair's normalised y (CMPC's input)."""
    direction = F.normalize(y, dim=1)
    return (x * direction).sum(dim=1, keepdim=True) * direction
