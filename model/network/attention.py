"""Audio-guided attention of LLINet (Jia et al., ACM MM 2020).

s_p = v̄_pᵀ ā over the h·w positions (the localisation map); s' = softmax(s);
attended feature v̂ = Σ_p (s'_p + 1) v̄_p.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AudioTransform(nn.Module):
    """ā = ReLU(Linear(a)): maps the audio embedding into the local-feature space."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(embed_dim, embed_dim)

    def forward(self, audio_embedding: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(audio_embedding))


def attention_scores(local: torch.Tensor, audio_bar: torch.Tensor) -> torch.Tensor:
    """local [B,D,h,w], ā [B,D] -> s [B,h,w] (before softmax)."""
    if local.shape[:2] != audio_bar.shape:
        raise ValueError(f"local {tuple(local.shape)} and audio {tuple(audio_bar.shape)} disagree on B or D")
    return torch.einsum("bdhw,bd->bhw", local, audio_bar.to(local.dtype))


def attend(local: torch.Tensor, audio_bar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (s [B,h,w], v̂ [B,D]) with v̂ = Σ_p (softmax(s)_p + 1) v̄_p."""
    scores = attention_scores(local, audio_bar)
    weights = F.softmax(scores.flatten(1), dim=1) + 1.0          # [B, h*w]
    attended = torch.einsum("bdp,bp->bd", local.flatten(2), weights)
    return scores, attended
