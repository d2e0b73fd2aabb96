"""MiniVGG: VGG-style blocks of 3x3 convolutions for small images."""

from __future__ import annotations

from torch import nn


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
