"""Networks that more than one chapter uses. Each ``forward`` returns logits (no softmax)."""

from __future__ import annotations

import torch
from torch import nn


class TinyCNN(nn.Module):
    """Two conv-ReLU-pool blocks and a linear head: the tour's smallest useful CNN.

    Input (N, in_channels, 28, 28) -> logits (N, num_classes).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # (N, w, 14, 14)
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # (N, 2w, 7, 7)
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, for 28x28 inputs.

    The first convolution pads by 2 so that MNIST's 28x28 digits play the role of the original
    32x32 input. (N, 1, 28, 28) -> logits (N, num_classes); 61,706 parameters for 10 classes.
    ``input_size=32`` (e.g. CIFAR-10) drops that padding: the original 32 -> 28 -> 14 layout.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, *, input_size: int = 28):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"input_size must be 28 (padded, MNIST) or 32, got {input_size}")
        pad = (32 - input_size) // 2
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),  # (N, 6, 14, 14)
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),                      # (N, 16, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class MiniVGG(nn.Module):
    """Two VGG-style blocks of two 3x3 convolutions and max pooling, then three dense layers.

    (N, 1, 28, 28) -> logits (N, num_classes); 123,502 parameters for 10 classes.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3), nn.ReLU(),           # (N, 16, 26, 26)
            nn.Conv2d(16, 16, 3), nn.ReLU(), nn.MaxPool2d(2),   # (N, 16, 12, 12)
            nn.Conv2d(16, 32, 3), nn.ReLU(),                    # (N, 32, 10, 10)
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (N, 32, 5, 5)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ThreeBlockCNN(nn.Module):
    """Three conv-BN-ReLU-maxpool blocks (32, 64, 128 channels) and a 2048-128-classes head.

    The small SVHN/CIFAR classifier of chapter 5. (N, 3, 32, 32) -> logits (N, num_classes).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        layers, c = [], in_channels
        for width in (32, 64, 128):  # 32 -> 16 -> 8 -> 4 pixels
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, 128),
                                        nn.ReLU(inplace=True), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class LayeredCNN(nn.Module):
    """Six conv-BN-ReLU layers in three pairs (a 2x2 max-pool after each pair), global average
    pooling and a linear head. ``layers[i]`` is layer i + 1: the unit that the layer-transfer
    experiment of Yosinski et al. (2014) copies and freezes. (N, C, 32, 32) -> (N, num_classes).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10,
                 widths: tuple[int, int, int] = (32, 64, 128)):
        super().__init__()
        layers, c = [], in_channels
        for width in widths:  # 32 -> 16 -> 8 -> 4 pixels
            for pool in (False, True):
                layer = [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                         nn.ReLU(inplace=True)] + ([nn.MaxPool2d(2)] if pool else [])
                layers.append(nn.Sequential(*layer))
                c = width
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.layers(x))


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
