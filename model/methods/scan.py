"""SCAN: Lee, Chen, Hua, Hu & He, "Stacked Cross Attention for Image-Text Matching", ECCV 2018.

Text-to-image formulation (t-i), with audio time steps in the place of words and LLINet's local
image features v̄ as the regions. With cosine s_tr between step t and region r:
s̄_tr = [s_tr]₊ / √(Σ_t' [s_t'r]₊²) (normalised over the steps), α_tr = softmax_r(λ₁ s̄_tr), the
attended image vector of step t is a_t = Σ_r α_tr v_r, its relevance R_t = cos(e_t, a_t), and the
image-clip score is the mean over steps (AVG pooling). The loss is the hinge triplet loss on the
hardest negatives of the batch (VSE++), both directions, margin α.

Image↔audio here: v̄ [D, h, w] is average-pooled to at most 6×6 = 36 regions (SCAN used 36
detected regions per image) and projected by a Linear; the audio encoder's last feature map,
averaged over mel bands, gives the time steps (pooled to at most 32) and a Linear projects them
into the same space. Hardest negatives are taken among other-class samples. Retrieval ranks by
the SCAN score itself.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method, audio_feature_map, different_class
from model.network.llinet import LLINet

REGION_GRID = 6      # regions per side after pooling v̄
MAX_STEPS = 32       # audio time steps after pooling
SMOOTH = 9.0         # λ₁ of the attention softmax (the paper's value for t-i AVG)
MARGIN = 0.2         # α of the triplet loss (the paper's)
EPSILON = 1e-8


def scan_scores(regions: torch.Tensor, steps: torch.Tensor, smooth: float = SMOOTH) -> torch.Tensor:
    """regions [Ni, R, D] and steps [Na, T, D], both L2-normalised -> scores [Ni, Na].

    The attended vector is never formed: e_t·a_t = Σ_r α_tr s_tr and ‖a_t‖² = α_tᵀ G α_t with the
    regions' Gram matrix G, so memory is [Ni, Na, T, R] instead of [Ni, Na, T, D].
    """
    regions, steps = regions.float(), steps.float()
    cosine = torch.einsum("ird,jtd->ijtr", regions, steps)
    clipped = F.relu(cosine)
    normalised = clipped / (clipped.pow(2).sum(dim=2, keepdim=True).sqrt() + EPSILON)
    alpha = F.softmax(smooth * normalised, dim=3)
    numerator = (alpha * cosine).sum(dim=3)
    gram = torch.einsum("ird,iqd->irq", regions, regions)
    squared_norm = torch.einsum("ijtr,irq,ijtq->ijt", alpha, gram, alpha)
    relevance = numerator / squared_norm.clamp(min=EPSILON).sqrt()
    return relevance.mean(dim=2)


def hardest_negative_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """mean_i [α − S_ii + max_j S_ij]₊ + [α − S_ii + max_k S_ki]₊ over other-class j, k."""
    positive = scores.diagonal()
    negatives = scores.masked_fill(~different_class(labels), float("-inf"))
    hardest_audio = negatives.max(dim=1).values
    hardest_image = negatives.max(dim=0).values
    return (F.relu(margin - positive + hardest_audio) + F.relu(margin - positive + hardest_image)).mean()


class SCAN(Method):
    name = "scan"
    gathered = ("regions", "steps")
    own_similarity = True

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        dim = net.config.embed_dim
        self.region_projection = nn.Linear(dim, dim)
        self.step_projection = nn.Linear(net.audio_encoder.fc.in_features, dim)
        # SCAN scores regions and steps only: the image head and audio Linear are unused
        # (frozen, so DDP waits for no gradient of them).
        net.image_encoder.head.requires_grad_(False)
        net.audio_encoder.fc.requires_grad_(False)

    def local_features(self, images: torch.Tensor) -> torch.Tensor:
        """v̄ [B, D, h, w]: the trainable attention layer on the frozen stem (LLINet's local features)."""
        encoder = self.net.image_encoder
        with torch.no_grad():
            stem = encoder.stem(images)
        return encoder.attention_layer(stem)

    def regions(self, local: torch.Tensor) -> torch.Tensor:
        grid = min(REGION_GRID, local.shape[-2]), min(REGION_GRID, local.shape[-1])
        pooled = F.adaptive_avg_pool2d(local, grid).flatten(2).transpose(1, 2)        # [B, R, D]
        return F.normalize(self.region_projection(pooled), dim=2)

    def steps(self, waveforms: torch.Tensor, sample_rate: int, lengths: torch.Tensor | None) -> torch.Tensor:
        series = audio_feature_map(self.net, waveforms, sample_rate, lengths).mean(dim=3)   # [B, C, T]
        series = F.adaptive_avg_pool1d(series, min(MAX_STEPS, series.shape[-1])).transpose(1, 2)
        return F.normalize(self.step_projection(series), dim=2)

    def forward(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        regions = self.regions(self.local_features(images))
        steps = self.steps(waveforms, sample_rate, lengths)
        return {"regions": regions, "steps": steps, "v": regions.mean(dim=1), "a": steps.mean(dim=1)}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total = self.validation_loss(out, labels)
        return total, {"match": total.detach(), "attention": torch.zeros_like(total.detach())}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return hardest_negative_loss(scan_scores(out["regions"], out["steps"]), labels)

    def image_repr(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return out["regions"]

    def audio_repr(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return out["steps"]

    def similarity(self, image_repr: torch.Tensor, audio_repr: torch.Tensor) -> torch.Tensor:
        return scan_scores(image_repr, audio_repr)

    @torch.no_grad()
    def pair_scores(self, image_repr: torch.Tensor, audio_repr: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        # [chunk, Na, T, R] intermediates: 8 images x 747 clips x 32 x 36 floats is ~28 MB each.
        return super().pair_scores(image_repr, audio_repr, chunk)

    # llinet-eval: global embeddings are the mean region / step; the map scores every position.
    def embed_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local = self.local_features(images)
        return self.regions(local).mean(dim=1), local

    def embed_audio(self, waveforms: torch.Tensor, sample_rate: int,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.steps(waveforms, sample_rate, lengths).mean(dim=1)

    def localization_map(self, local: torch.Tensor, audio_embedding: torch.Tensor) -> torch.Tensor:
        positions = F.normalize(self.region_projection(local.flatten(2).transpose(1, 2)), dim=2)   # [B, hw, D]
        scores = torch.einsum("bpd,bd->bp", positions, F.normalize(audio_embedding, dim=1))
        return scores.view(local.shape[0], *local.shape[2:])
