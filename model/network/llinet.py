"""LLINet: the whole model (Jia et al., "Look, Listen and Infer", ACM MM 2020)."""
from __future__ import annotations

import torch
from torch import nn

from model.network.attention import AudioTransform, attend, attention_scores
from model.network.audio_encoder import AudioEncoder
from model.network.config import ModelConfig
from model.network.image_encoder import ImageEncoder
from model.network.logmel import LogMel


class LLINet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.logmel = LogMel(config.n_mels, config.window_ms, config.hop_ms, config.log_offset,
                             config.logmel_pad, config.short_clip_pad)
        self.audio_encoder = AudioEncoder(config.embed_dim)
        self.image_encoder = ImageEncoder(config)
        self.audio_transform = AudioTransform(config.embed_dim)
        if config.gamma_att == 0:
            # Without the attention loss nothing reaches ā's Linear (the authors' default
            # --mode retrieval): frozen, so SGD leaves it as initialised (no weight decay on a
            # zero gradient) and DDP waits for no gradient of it.
            self.audio_transform.requires_grad_(False)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by optimiser group: 'image' (lr decays), 'audio', 'transform'."""
        image = [p for p in self.image_encoder.parameters() if p.requires_grad]
        return {"image": image, "audio": list(self.audio_encoder.parameters()),
                "transform": list(self.audio_transform.parameters())}

    def embed_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B,3,H,W] normalised -> (v [B,D] NOT L2-normalised, local v̄ [B,D,h,w])."""
        return self.image_encoder(images)

    def embed_audio(self, waveforms: torch.Tensor, sample_rate: int,
                    lengths: torch.Tensor | None = None) -> torch.Tensor:
        """waveforms [B,C,T] -> a [B,D], L2-normalised; log-mel computed here.

        ``lengths`` [B]: samples of each clip before zero padding (needed by
        ``short_clip_pad='logmel'``; without it every clip counts as T samples long).
        """
        return self.audio_encoder(self.logmel(waveforms, sample_rate, lengths))

    def localization_map(self, local: torch.Tensor, audio_embedding: torch.Tensor) -> torch.Tensor:
        """local v̄ [B,D,h,w] and a [B,D] (from embed_audio) -> s [B,h,w] before softmax."""
        return attention_scores(local, self.audio_transform(audio_embedding))

    def attend(self, local: torch.Tensor, audio_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s [B,h,w], v̂ [B,D]) for local v̄ and a (ā computed inside)."""
        return attend(local, self.audio_transform(audio_embedding))

    def forward(self, images: torch.Tensor, waveforms: torch.Tensor, sample_rate: int,
                lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Paired batch -> everything the losses need (v, a, ā, s, v̂, local)."""
        v, local = self.embed_images(images)
        a = self.embed_audio(waveforms, sample_rate, lengths)
        a_bar = self.audio_transform(a)
        scores, v_hat = attend(local, a_bar)
        return {"v": v, "local": local, "a": a, "a_bar": a_bar, "scores": scores, "v_hat": v_hat}
