"""DAR: Aytar, Vondrick & Torralba, "See, Hear, and Read: Deep Aligned Representations" (2017).

DAR aligns modalities with (1) model transfer: a student network of one modality is trained to
output the class distribution a teacher network gives the paired sample of another modality
(KL divergence), through upper layers shared by all modalities; and (2) a ranking loss on cosine
similarities that puts a pair above the non-pairs by a margin.

Image↔audio here: the shared upper layer is one classifier over the seen classes applied to both
embeddings. The image branch is the teacher: it learns the seen classes from their labels (cross
entropy) and the audio branch matches its (detached) class distribution, KL(p_image ‖ p_audio).
The ranking term runs both ways over every different-class pair of the batch:
mean over (i, j) of max(0, Δ − cos(v_i, a_i) + cos(v_i, a_j)), and the same with images ranked
for each clip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method, cosine_scores, different_class
from model.network.llinet import LLINet

MARGIN = 0.1   # Δ of the ranking loss (our choice)


def ranking_loss(v: torch.Tensor, a: torch.Tensor, labels: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """Bidirectional cosine ranking hinge, averaged over the different-class pairs."""
    scores = cosine_scores(v, a)
    positive = scores.diagonal()
    negatives = different_class(labels).float()
    image_query = F.relu(margin - positive[:, None] + scores)     # row i: image i ranks clips j
    audio_query = F.relu(margin - positive[None, :] + scores)     # column j: clip j ranks images i
    pairs = negatives.sum().clamp(min=1.0)
    return ((image_query + audio_query) * negatives).sum() / pairs


def transfer_loss(image_logits: torch.Tensor, audio_logits: torch.Tensor) -> torch.Tensor:
    """KL(p_image ‖ p_audio) per pair, batch mean; the image (teacher) side gets no gradient."""
    teacher = F.log_softmax(image_logits.detach().float(), dim=1)
    student = F.log_softmax(audio_logits.float(), dim=1)
    return (teacher.exp() * (teacher - student)).sum(dim=1).mean()


class DAR(Method):
    name = "dar"
    gathered = ("v", "a", "image_logits", "audio_logits")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        self.shared = nn.Linear(net.config.embed_dim, n_classes)

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**out, "image_logits": self.shared(out["v"]), "audio_logits": self.shared(out["a"])}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        rank = ranking_loss(out["v"], out["a"], labels)
        teacher = F.cross_entropy(out["image_logits"].float(), labels)
        transfer = transfer_loss(out["image_logits"], out["audio_logits"])
        total = rank + teacher + transfer
        return total, {"match": rank.detach(), "attention": torch.zeros_like(total.detach()),
                       "teacher": teacher.detach(), "transfer": transfer.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return ranking_loss(out["v"], out["a"], labels)
