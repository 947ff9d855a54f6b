"""Model configuration: one dataclass, serialisable to plain dicts for checkpoints.

The defaults are exactly the paper's model (Jia et al., ACM MM 2020, and
the authors' public code): ResNet-101 image backbone with ImageNet weights, input 244,
40-band log-mel with 25 ms windows and 10 ms hops, gamma3 = 10, gamma_att = 1.
Smaller backbones / inputs exist only so tests and demos can run on a CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")

# Channels out of layer3 / layer4 of torchvision ResNets (basic vs bottleneck blocks).
LAYER3_CHANNELS = {"resnet18": 256, "resnet34": 256, "resnet50": 1024, "resnet101": 1024}
LAYER4_CHANNELS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048}

# Switches where the authors' released code differs from the paper (docs/paper-vs-official-code.md);
# the first value of each is the paper's and the default.
GATE_SOFTMAX = ("positions", "batch")
LOGMEL_PADS = ("constant", "reflect")
SHORT_CLIP_PADS = ("waveform", "logmel")


@dataclass
class ModelConfig:
    backbone: str = "resnet101"
    image_size: int = 244
    # 'imagenet' (torchvision weights), 'none' (random init), or a path to a state_dict file.
    image_weights: str = "imagenet"
    # False = official behaviour: the frozen backbone's BatchNorm stays in train mode.
    frozen_bn: bool = False
    n_mels: int = 40
    window_ms: float = 25.0
    hop_ms: float = 10.0
    log_offset: float = 1e-6
    gamma_match: float = 10.0   # gamma3: scale of the cosine-similarity logits
    gamma_att: float = 1.0      # weight of the attention loss
    head_init_range: float = 0.1
    # Image gate: softmax of v̄ over the h·w positions per channel (paper), or over the batch per
    # position and channel (the authors' code: ``F.softmax`` without ``dim`` on a 3-D tensor).
    gate_softmax: str = "positions"
    # STFT frame padding at the clip edges: zeros (librosa >= 0.9) or reflection (librosa < 0.9).
    logmel_pad: str = "constant"
    # Clips shorter than the clip length: zero samples in the waveform (-13.8 in the log-mel),
    # or log-mel frames of 0.0 after the clip's own frames (the authors' code).
    short_clip_pad: str = "waveform"

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {self.image_size}")
        if self.n_mels < 8:
            raise ValueError(f"n_mels must be >= 8, got {self.n_mels}")
        for name, allowed in (("gate_softmax", GATE_SOFTMAX), ("logmel_pad", LOGMEL_PADS),
                              ("short_clip_pad", SHORT_CLIP_PADS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def embed_dim(self) -> int:
        """Shared embedding size: v̄ (layer3 channels) and ā must live in one space."""
        return LAYER3_CHANNELS[self.backbone]

    @property
    def layer4_channels(self) -> int:
        return LAYER4_CHANNELS[self.backbone]

    @property
    def local_map_size(self) -> int:
        """Side of the local feature map (16 at input 244): stride 16 with ceil rounding."""
        size = self.image_size
        size = (size + 2 * 3 - 7) // 2 + 1      # conv1 7x7/2 pad 3
        size = (size + 2 * 1 - 3) // 2 + 1      # maxpool 3x3/2 pad 1
        size = (size + 2 * 1 - 3) // 2 + 1      # layer2 stride 2
        size = (size + 2 * 1 - 3) // 2 + 1      # layer3 stride 2
        return size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s): {unknown}")
        return cls(**data)
