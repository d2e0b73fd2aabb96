"""LeNet-5 (LeCun et al., 1998)."""

from __future__ import annotations

from torch import nn


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
