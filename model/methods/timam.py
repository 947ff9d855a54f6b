"""TIMAM: Sarafianos, Xu & Kakadiaris, "Adversarial Representation Learning for Text-to-Image
Matching", ICCV 2019.

Three terms: an identity (classification) loss with a norm-softmax classifier shared by both
modalities, the CMPM matching loss of Zhang & Lu (:func:`model.methods.common.cmpm_loss`), and
an adversarial loss: a discriminator learns to tell which modality an embedding came from while
the encoders learn to make the two indistinguishable.

Image↔audio here: the identity classes are the seen classes. The adversarial game is one SGD step
through a gradient-reversal layer: the discriminator (Linear-ReLU-Linear on the embedding)
minimises its binary cross entropy (image = 1, audio = 0) and the reversed gradient trains the
encoders to maximise it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.methods.base import Method
from model.methods.common import NormSoftmax, cmpm_loss, reverse_gradient
from model.network.llinet import LLINet

ADVERSARIAL_WEIGHT = 1.0   # scale of the reversed gradient (our choice)


def modality_loss(image_logit: torch.Tensor, audio_logit: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross entropy: images labelled 1, audio 0 (mean of both)."""
    return 0.5 * (F.binary_cross_entropy_with_logits(image_logit.float(), torch.ones_like(image_logit.float()))
                  + F.binary_cross_entropy_with_logits(audio_logit.float(), torch.zeros_like(audio_logit.float())))


class TIMAM(Method):
    name = "timam"
    gathered = ("v", "a", "image_logits", "audio_logits", "image_modality", "audio_modality")

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__(net, n_classes)
        dim = net.config.embed_dim
        self.classifier = NormSoftmax(dim, n_classes)
        self.discriminator = nn.Sequential(nn.Linear(dim, dim // 2), nn.ReLU(inplace=True), nn.Linear(dim // 2, 1))

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        v, a = out["v"], out["a"]
        return {**out, "image_logits": self.classifier(v), "audio_logits": self.classifier(a),
                "image_modality": self.discriminator(reverse_gradient(v, ADVERSARIAL_WEIGHT))[:, 0],
                "audio_modality": self.discriminator(reverse_gradient(a, ADVERSARIAL_WEIGHT))[:, 0]}

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        identity = (F.cross_entropy(out["image_logits"].float(), labels)
                    + F.cross_entropy(out["audio_logits"].float(), labels))
        matching = cmpm_loss(out["v"], out["a"], labels)
        adversarial = modality_loss(out["image_modality"], out["audio_modality"])
        total = identity + matching + adversarial
        return total, {"match": matching.detach(), "attention": torch.zeros_like(total.detach()),
                       "identity": identity.detach(), "adversarial": adversarial.detach()}

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        return cmpm_loss(out["v"], out["a"], labels)
