"""Networks that more than one chapter uses. Each ``forward`` returns logits (no softmax)."""

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
