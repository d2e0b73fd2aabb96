"""Plain stacks of convolutions: TinyCNN, the 3-block CNN and LayeredCNN."""

from __future__ import annotations

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
