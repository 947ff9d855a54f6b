"""ULSLVC: Harwath, Torralba & Glass, "Unsupervised Learning of Spoken Language with Visual Context",
NeurIPS 2016.

Image and spoken-caption networks map into one space whose similarity is the dot product; for
every pair the loss samples one imposter caption and one imposter image and asks the pair to
beat each by a margin of 1:
max(0, v_i·a_imp − v_i·a_i + 1) + max(0, v_imp·a_i − v_i·a_i + 1).

Image↔audio here: imposters are drawn uniformly among the batch's samples of another class
(class-level pairing makes same-class items positives, not imposters). Retrieval ranks by the
same dot product.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from model.methods.base import Method, different_class

MARGIN = 1.0   # from the paper


def draw_imposters(labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """For each sample, a uniformly drawn index of another-class sample; -1 where the batch has none.
    Drawn on the CPU from the global torch RNG (or ``generator``): every process of a run draws the
    same ones, and a resumed run (which restores the RNG state) replays them."""
    allowed = different_class(labels.cpu())
    weights = torch.rand(allowed.shape, generator=generator) * allowed
    drawn = weights.argmax(dim=1)
    return torch.where(allowed.any(dim=1), drawn, torch.full_like(drawn, -1)).to(labels.device)


def ulslvc_loss(v: torch.Tensor, a: torch.Tensor, imposter_audio: torch.Tensor, imposter_image: torch.Tensor,
                margin: float = MARGIN) -> torch.Tensor:
    """Batch mean of the two sampled hinge terms on dot products (a term without imposter, -1, is 0)."""
    v, a = v.float(), a.float()
    positive = (v * a).sum(dim=1)
    wrong_audio = (v * a[imposter_audio.clamp(min=0)]).sum(dim=1)
    wrong_image = (v[imposter_image.clamp(min=0)] * a).sum(dim=1)
    terms = (F.relu(wrong_audio - positive + margin) * (imposter_audio >= 0)
             + F.relu(wrong_image - positive + margin) * (imposter_image >= 0))
    return terms.mean()


class ULSLVC(Method):
    name = "ulslvc"
    own_similarity = True

    def forward(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        v, _ = self.net.embed_images(images)
        return {"v": v, "a": self.embed_audio(waveforms, sample_rate, lengths)}

    def embed_audio(self, waveforms: torch.Tensor, sample_rate: int,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        # The audio encoder's own unit-length output: with both embeddings free, the dot products of
        # this encoder pair grow without bound and SGD diverges within ~10 steps (measured).
        return self.net.embed_audio(waveforms, sample_rate, lengths)

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = ulslvc_loss(out["v"], out["a"], draw_imposters(labels), draw_imposters(labels))
        return total, {"match": total.detach(), "attention": torch.zeros_like(total.detach())}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        # Fixed imposters: validation must not move the training RNG, and epochs compare alike.
        generator = torch.Generator().manual_seed(0)
        return ulslvc_loss(out["v"], out["a"], draw_imposters(labels, generator), draw_imposters(labels, generator))

    def similarity(self, image_repr: torch.Tensor, audio_repr: torch.Tensor) -> torch.Tensor:
        return image_repr.float() @ audio_repr.float().T
