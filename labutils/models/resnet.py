"""The CIFAR ResNets of He et al. (2016): basic blocks, ResNet-20/32/56."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """The residual block of He et al. (2016): two 3x3 conv-BN layers plus a shortcut.

    When the shape changes (stride 2 or more channels), the shortcut is either option "A"
    (subsample and pad the new channels with zeros: no parameters, the CIFAR ResNets of the
    paper) or option "B" (a 1x1 convolution and batch norm: a projection).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 shortcut: str = "A"):
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (projection), "
                             f"got {shortcut!r}")
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module | None = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            if shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                    nn.BatchNorm2d(out_channels))
            else:
                self.shortcut = _ZeroPadShortcut(out_channels - in_channels, stride)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is None:  # a "plain" block (He et al.'s baseline without shortcuts)
            return torch.relu(out)
        return torch.relu(out + self.shortcut(x))


class _ZeroPadShortcut(nn.Module):
    """Option A: take every ``stride``-th pixel and append ``extra`` zero channels."""

    def __init__(self, extra: int, stride: int):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))


class CifarResNet(nn.Module):
    """The CIFAR ResNets of He et al. (2016), depth 6n + 2: a 3x3 conv with 16 channels, three
    stages of n basic blocks (16, 32, 64 channels; 32, 16, 8 pixels), global average pooling
    and a linear layer. ``plain=True`` removes the shortcuts (their "plain" baselines)."""

    def __init__(self, depth: int = 20, num_classes: int = 10, *, shortcut: str = "A",
                 plain: bool = False, width: int = 16):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110), "
                             f"got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        blocks, c = [], width
        for stage, out in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                block = BasicBlock(c, out, stride, shortcut)
                if plain:
                    block.shortcut = None
                blocks.append(block)
                c = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def resnet20(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-20 for CIFAR (0.27M parameters with the paper's zero-padding shortcuts)."""
    return CifarResNet(20, num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-32 for CIFAR (0.46M parameters)."""
    return CifarResNet(32, num_classes, **kwargs)


def resnet56(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-56 for CIFAR (0.85M parameters)."""
    return CifarResNet(56, num_classes, **kwargs)
