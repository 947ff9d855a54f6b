"""Image encoder of LLINet (Jia et al., ACM MM 2020).

A frozen torchvision ResNet; a trainable copy of layer3 (the "attention
layer", initialised from the same weights) on layer2's output gives the local
features v̄ [B, D, h, w]. The frozen path multiplies layer3's output by
(softmax of v̄ over positions, per channel) + 1, then runs layer4, average
pooling and a trainable head Linear(C4, C4) + ReLU + Linear(C4, D) -> v.

``gate_softmax='batch'`` reproduces the authors' code instead: its
``F.softmax(x)`` has no ``dim`` and gets v̄ flattened to 3-D [B, D, h·w], for
which PyTorch's implicit choice is dim 0, the batch, so an image's embedding
depends on the other images of its batch.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from model.network.config import ModelConfig

# The paper used torchvision's original ImageNet weights (``pretrained=True``).
IMAGENET_WEIGHTS = {
    "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": torchvision.models.ResNet101_Weights.IMAGENET1K_V1,
}


class ImageWeightsError(RuntimeError):
    """Image weights could not be obtained; the message says what to do."""


def imagenet_checkpoint_path(backbone: str) -> Path:
    """Where torchvision looks for (and caches) the ImageNet weights file."""
    url = IMAGENET_WEIGHTS[backbone].url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_backbone_state(config: ModelConfig) -> dict[str, torch.Tensor] | None:
    """State dict for the torchvision ResNet named by ``config.image_weights`` (None = random)."""
    choice = config.image_weights
    if choice == "none":
        return None
    if choice == "imagenet":
        weights = IMAGENET_WEIGHTS[config.backbone]
        target = imagenet_checkpoint_path(config.backbone)
        try:
            return weights.get_state_dict(progress=False, check_hash=True)
        except (OSError, RuntimeError) as exc:  # URLError is an OSError; hash mismatch a RuntimeError
            raise ImageWeightsError(
                f"could not get the ImageNet weights for {config.backbone} ({exc}). Offline? Download "
                f"{weights.url} on a connected machine and put it at {target} (torch hub checkpoints "
                f"dir; set TORCH_HOME to move it), or pass --image-weights PATH or none."
            ) from exc
    path = Path(choice)
    if not path.is_file():
        raise ImageWeightsError(f"image weights file not found: {path} (expected 'imagenet', 'none' or a file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the user's file
        raise ImageWeightsError(f"{path}: not a weights_only torch state dict ({exc})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ImageWeightsError(f"{path}: expected a state dict of a torchvision {config.backbone}")
    return state


def build_resnet(config: ModelConfig) -> torchvision.models.ResNet:
    resnet = getattr(torchvision.models, config.backbone)(weights=None)
    state = load_backbone_state(config)
    if state is not None:
        missing, unexpected = resnet.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("fc.")]
        unexpected = [k for k in unexpected if not k.startswith("fc.")]
        if missing or unexpected:
            raise ImageWeightsError(
                f"image weights {config.image_weights!r} do not fit torchvision {config.backbone}: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    return resnet


def implicit_softmax_dim(ndim: int) -> int:
    """The dim ``F.softmax(x)`` picks when called without ``dim`` (PyTorch's deprecated rule)."""
    return 0 if ndim in (0, 1, 3) else 1


class ImageEncoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        resnet = build_resnet(config)
        self.frozen_bn = config.frozen_bn
        # The gate's softmax runs over v̄ flattened to [B, D, h·w]: dim 2 = positions (paper);
        # the authors' dim-less call normalises over what PyTorch picks for a 3-D tensor.
        self.gate_dim = 2 if config.gate_softmax == "positions" else implicit_softmax_dim(3)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                  resnet.layer1, resnet.layer2)
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        for module in (self.stem, self.layer3, self.layer4):
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        # Trainable copy of layer3, initialised from the same (pretrained) weights.
        self.attention_layer = copy.deepcopy(resnet.layer3)
        for parameter in self.attention_layer.parameters():
            parameter.requires_grad_(True)
        channels4 = config.layer4_channels
        hidden, out = nn.Linear(channels4, channels4), nn.Linear(channels4, config.embed_dim)
        self.head = nn.Sequential(hidden, nn.ReLU(inplace=True), out)
        for layer in (hidden, out):
            # Official init: weights uniform(-0.1, 0.1); biases start at zero (our choice).
            nn.init.uniform_(layer.weight, -config.head_init_range, config.head_init_range)
            nn.init.zeros_(layer.bias)

    def frozen_modules(self) -> tuple[nn.Module, ...]:
        return (self.stem, self.layer3, self.layer4)

    def train(self, mode: bool = True) -> ImageEncoder:
        super().train(mode)
        if mode and self.frozen_bn:
            # Option: frozen backbone BN uses its running statistics and never updates them.
            for module in self.frozen_modules():
                for sub in module.modules():
                    if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                        sub.eval()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B,3,H,W] normalised -> (v [B,D] not normalised, local v̄ [B,D,h,w])."""
        # No trainable parameter upstream of these, so no graph is needed; BN
        # running statistics still update in train mode, as in the official code.
        with torch.no_grad():
            layer2_out = self.stem(images)
            layer3_out = self.layer3(layer2_out)
        local = self.attention_layer(layer2_out)
        gate = F.softmax(local.flatten(2), dim=self.gate_dim).view_as(local) + 1.0
        layer4_out = self.layer4(layer3_out * gate)
        pooled = torch.flatten(F.adaptive_avg_pool2d(layer4_out, 1), 1)
        return self.head(pooled), local
