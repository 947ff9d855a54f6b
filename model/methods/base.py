"""What every method provides: heads on LLINet's encoders, a loss, and its retrieval similarity.

A method is an ``nn.Module`` around one :class:`~model.network.llinet.LLINet` (``net``). Two rules
make one training step correct on one process and under DDP alike:

* every parameterised head runs in :meth:`Method.forward`, on the samples of this process;
* :meth:`Method.loss` has no parameters of its own: it gets the outputs named in ``gathered``
  concatenated over all processes (the trainer gathers them; only the local slice carries
  gradient), so negatives and batch-wide terms span the global batch.

Losses that need class logits see the train (seen) classes only: ``n_classes`` is the number of
train classes, and validation and test classes never reach a classifier. Audio embeddings of the
baselines are the audio encoder's output before LLINet's L2 normalisation (each loss normalises
where its paper does); LLINet's own attention transform ā and attention loss are LLINet's only.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from model.network.llinet import LLINet


def audio_feature_map(net: LLINet, waveforms: torch.Tensor, sample_rate: int,
                      lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The audio encoder's last feature map [B, C, time, mel] (before its pooling and Linear)."""
    encoder = net.audio_encoder
    x = net.logmel(waveforms, sample_rate, lengths).unsqueeze(1)
    return encoder.stage2(encoder.stage1(encoder.stem(x)))


def raw_audio_embedding(net: LLINet, waveforms: torch.Tensor, sample_rate: int,
                        lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The audio encoder's embedding before the L2 normalisation LLINet applies: [B, D]."""
    pooled = torch.flatten(F.adaptive_avg_pool2d(audio_feature_map(net, waveforms, sample_rate, lengths), 1), 1)
    return net.audio_encoder.fc(pooled)


def cosine_scores(images: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """[Ni, Na] cosine similarities of row vectors."""
    return F.normalize(images.float(), dim=1) @ F.normalize(audio.float(), dim=1).T


def different_class(labels: torch.Tensor) -> torch.Tensor:
    """[B, B] True where samples i and j have different classes (the valid negatives)."""
    return labels[:, None] != labels[None, :]


class Method(nn.Module):
    """Base class: image embedding v and (raw) audio embedding a, cosine similarity."""

    name: ClassVar[str] = ""
    #: Outputs of :meth:`forward` the loss needs over the global batch.
    gathered: ClassVar[tuple[str, ...]] = ("v", "a")
    #: True when retrieval ranks by :meth:`similarity` of representations other than (v, a) cosine.
    own_similarity: ClassVar[bool] = False
    #: True for LLINet only: its attention transform ā and attention loss are trained.
    uses_attention: ClassVar[bool] = False

    def __init__(self, net: LLINet, n_classes: int) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a method needs at least 2 train classes, got {n_classes}")
        self.net = net
        self.n_classes = n_classes
        if not self.uses_attention:
            # ā and the attention loss belong to LLINet: a baseline leaves the transform untouched.
            net.audio_transform.requires_grad_(False)

    # --- training -------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        v, _ = self.net.embed_images(images)
        a = raw_audio_embedding(self.net, waveforms, sample_rate, lengths)
        return self.heads({"v": v, "a": a})

    def heads(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add the outputs of the method's heads (logits, ...) to ``out``; none by default."""
        return out

    def loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, parts) over the gathered batch; ``parts['match']`` is logged as train_match."""
        raise NotImplementedError

    def validation_loss(self, out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        """The loss terms that need no class logits (validation classes are unseen)."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """LLINet's optimiser groups (image, audio, transform) plus 'heads' when the method has any."""
        groups = self.net.parameter_groups()
        heads = [p for name, p in self.named_parameters() if not name.startswith("net.") and p.requires_grad]
        return {**groups, "heads": heads} if heads else groups

    # --- retrieval ------------------------------------------------------------------------
    def image_repr(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return out["v"]

    def audio_repr(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return out["a"]

    def similarity(self, image_repr: torch.Tensor, audio_repr: torch.Tensor) -> torch.Tensor:
        """[Ni, Na] scores ranking the gallery (larger = more similar)."""
        return cosine_scores(image_repr, audio_repr)

    # --- llinet-eval hooks (the names LLINet has) --------------------------------------------
    def embed_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.embed_images(images)

    def embed_audio(self, waveforms: torch.Tensor, sample_rate: int,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        return raw_audio_embedding(self.net, waveforms, sample_rate, lengths)

    def localization_map(self, local: torch.Tensor, audio_embedding: torch.Tensor) -> torch.Tensor:
        """LLINet's map s with the (untrained for baselines) transform ā; kept so every report has one."""
        return self.net.localization_map(local, F.normalize(audio_embedding, dim=1))

    def pair_features(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                      lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(image repr, audio repr) for :meth:`similarity` (used when ``own_similarity``)."""
        out = self.forward(images, waveforms, sample_rate, lengths)
        return self.image_repr(out), self.audio_repr(out)

    @torch.no_grad()
    def pair_scores(self, image_repr: torch.Tensor, audio_repr: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """:meth:`similarity` of every image with every clip, ``chunk`` images at a time."""
        return torch.cat([self.similarity(image_repr[i:i + chunk], audio_repr)
                          for i in range(0, len(image_repr), chunk)])

    # --- checkpoints ------------------------------------------------------------------------
    def head_state(self) -> dict[str, torch.Tensor]:
        """The method's own weights (LLINet's are saved as the checkpoint's 'model')."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("net.")}

    def load_head_state(self, state: dict[str, Any]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("net.")]
        if missing or unexpected:
            raise ValueError(f"{self.name} head weights do not fit: missing {missing}, unexpected {unexpected}")
