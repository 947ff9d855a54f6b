"""LLINet itself (Jia et al., "Look, Listen and Infer", ACM MM 2020) as a method.

Exactly the model and losses of :mod:`model.network`: matching loss on (v, a) plus γ_att times
the attention loss on (v̂, ā), with LLINet's L2-normalised audio embedding and cosine similarity.
It has no heads of its own, so its checkpoints are the same as before methods existed.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from model.methods.base import Method
from model.network.llinet import LLINet
from model.network.loss import LLINetLoss, matching_loss


class LLINetMethod(Method):
    name = "llinet"
    gathered: ClassVar[tuple[str, ...]] = ("v", "a", "v_hat", "a_bar")
    uses_attention = True

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        self.criterion = LLINetLoss(net.config.gamma_match, net.config.gamma_att)

    def forward(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.net(images, waveforms, sample_rate, lengths)

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.criterion(out["v"], out["a"], out["v_hat"], out["a_bar"], labels)

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        gamma = self.criterion.gamma_match
        return (matching_loss(out["v"].float(), out["a"].float(), labels, gamma)
                + self.criterion.gamma_att * matching_loss(out["v_hat"].float(), out["a_bar"].float(), labels,
                                                           gamma))

    def embed_audio(self, waveforms: torch.Tensor, sample_rate: int,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.embed_audio(waveforms, sample_rate, lengths)

    def localization_map(self, local: torch.Tensor, audio_embedding: torch.Tensor) -> torch.Tensor:
        return self.net.localization_map(local, audio_embedding)
