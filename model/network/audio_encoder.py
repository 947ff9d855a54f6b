"""Audio encoder of LLINet: a small ResNet over the log-mel "image" (Jia et al. 2020).

Input: log-mel [B, frames, n_mels] treated as a 1-channel image. Output: the
L2-normalised audio embedding a [B, embed_dim].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN; a 1x1 conv + BN projection when shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class AudioEncoder(nn.Module):
    """conv7x7/2 (64) + BN + ReLU + maxpool3x3/2; 2 blocks 64->128; 2 blocks 128->512 /2; GAP; Linear."""

    def __init__(self, embed_dim: int = 1024) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.stage1 = nn.Sequential(BasicBlock(64, 128), BasicBlock(128, 128))
        self.stage2 = nn.Sequential(BasicBlock(128, 512, stride=2), BasicBlock(512, 512))
        self.fc = nn.Linear(512, embed_dim)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel.unsqueeze(1)                      # [B, 1, frames, n_mels]
        x = self.stage2(self.stage1(self.stem(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return F.normalize(self.fc(x), dim=1)
