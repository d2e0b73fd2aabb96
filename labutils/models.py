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


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al., 1998) with ReLU and max pooling, for 28x28 inputs.

    The first convolution pads by 2 so that MNIST's 28x28 digits play the role of the original
    32x32 input. (N, 1, 28, 28) -> logits (N, num_classes); 61,706 parameters for 10 classes.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (N, 6, 14, 14)
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
