"""Losses of LLINet (Jia et al., ACM MM 2020).

Matching loss: P = gamma3 · cos(x_i, y_j) over the batch; entries i≠j whose
samples share a class are masked out (they are not negatives); cross entropy
towards the diagonal over rows (x→y) plus over columns (y→x). The attention
loss is the same function on (v̂, ā). Total = matching + gamma_att · attention;
with gamma_att = 0 (the authors' default ``--mode retrieval``) the attention
term is computed for the logs only and stays out of the graph.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def same_class_mask(labels: torch.Tensor) -> torch.Tensor:
    """True where i≠j and labels[i] == labels[j] (positives that are not the pair)."""
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)


def matching_loss(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Bidirectional masked softmax cross entropy over scaled cosine similarities."""
    if x.shape[0] != y.shape[0] or x.shape[0] != labels.shape[0]:
        raise ValueError(f"batch sizes differ: {x.shape[0]}, {y.shape[0]}, {labels.shape[0]}")
    logits = gamma * F.normalize(x.float(), dim=1) @ F.normalize(y.float(), dim=1).T
    logits = logits.masked_fill(same_class_mask(labels), float("-inf"))
    target = torch.arange(len(labels), device=logits.device)
    return F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)


class LLINetLoss(nn.Module):
    def __init__(self, gamma_match: float = 10.0, gamma_att: float = 1.0) -> None:
        super().__init__()
        self.gamma_match = gamma_match
        self.gamma_att = gamma_att

    def forward(self, v: torch.Tensor, a: torch.Tensor, v_hat: torch.Tensor, a_bar: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        match = matching_loss(v, a, labels, self.gamma_match)
        if self.gamma_att == 0:
            attention = matching_loss(v_hat.detach(), a_bar.detach(), labels, self.gamma_match)
            return match, {"match": match.detach(), "attention": attention}
        attention = matching_loss(v_hat, a_bar, labels, self.gamma_match)
        total = match + self.gamma_att * attention
        return total, {"match": match.detach(), "attention": attention.detach()}
