"""TIMAM: Sarafianos, Xu & Kakadiaris, "Adversarial Representation Learning for Text-to-Image
Matching", ICCV 2019.

Three terms: an identity (classification) loss with a norm-softmax classifier shared by both
modalities, the CMPM matching loss of Zhang & Lu (:func:`model.methods.common.cmpm_loss`), and
an adversarial loss: a discriminator learns to tell which modality an embedding came from while
the encoders learn to make the two indistinguishable.

Image↔audio here: the identity classes are the seen classes. The adversarial game runs in one SGD
step: the discriminator (Linear-ReLU-Linear on the embedding) learns the modality (image = 1,
audio = 0) from detached embeddings, and the encoders minimise the same binary cross entropy with
the labels swapped through a frozen copy of it (the non-saturating objective of Goodfellow et al.,
2014), a loss bounded below, where reversing the discriminator's gradient would let the encoders
grow it without bound.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method
from model.methods.common import NormSoftmax, cmpm_loss
from model.network.llinet import LLINet

ADVERSARIAL_WEIGHT = 1.0   # weight of the encoders' adversarial term (our choice)


def modality_loss(image_logit: torch.Tensor, audio_logit: torch.Tensor) -> torch.Tensor:
    """Binary cross entropy of modality logits with images labelled 1 and audio 0 (mean of both).
    With the arguments swapped (audio logits first) it is the encoders' fooling loss."""
    return 0.5 * (F.binary_cross_entropy_with_logits(image_logit.float(), torch.ones_like(image_logit.float()))
                  + F.binary_cross_entropy_with_logits(audio_logit.float(), torch.zeros_like(audio_logit.float())))


class Discriminator(nn.Module):
    """Linear-ReLU-Linear modality logit; ``frozen=True`` runs it with its weights detached."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.hidden, self.out = nn.Linear(dim, dim // 2), nn.Linear(dim // 2, 1)

    def forward(self, x: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        def weights(layer: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
            return (layer.weight.detach(), layer.bias.detach()) if frozen else (layer.weight, layer.bias)

        hidden = F.relu(F.linear(x, *weights(self.hidden)))
        return F.linear(hidden, *weights(self.out))[:, 0]


class TIMAM(Method):
    name = "timam"
    gathered = ("v", "a", "image_logits", "audio_logits", "image_modality", "audio_modality",
                "image_fooling", "audio_fooling")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        dim = net.config.embed_dim
        self.classifier = NormSoftmax(dim, n_classes)
        self.discriminator = Discriminator(dim)

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v, a = out["v"], out["a"]
        return {**out, "image_logits": self.classifier(v), "audio_logits": self.classifier(a),
                # The discriminator's turn: embeddings detached, so only it learns from these.
                "image_modality": self.discriminator(v.detach()), "audio_modality": self.discriminator(a.detach()),
                # The encoders' turn: the discriminator frozen, so only they learn from these.
                "image_fooling": self.discriminator(v, frozen=True),
                "audio_fooling": self.discriminator(a, frozen=True)}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        identity = (F.cross_entropy(out["image_logits"].float(), labels)
                    + F.cross_entropy(out["audio_logits"].float(), labels))
        matching = cmpm_loss(out["v"], out["a"], labels)
        discriminator = modality_loss(out["image_modality"], out["audio_modality"])
        fooling = modality_loss(out["audio_fooling"], out["image_fooling"])   # labels swapped
        total = identity + matching + discriminator + ADVERSARIAL_WEIGHT * fooling
        return total, {"match": matching.detach(), "attention": torch.zeros_like(total.detach()),
                       "identity": identity.detach(), "discriminator": discriminator.detach(),
                       "fooling": fooling.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return cmpm_loss(out["v"], out["a"], labels)
