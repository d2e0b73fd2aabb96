"""The U-Net of Ronneberger et al. (2015), with padded convolutions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------------------------
# The U-Net


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with "same" padding and batch norm.

    ``depth`` poolings; widths base, 2 base, ... 2**depth base. The decoder upsamples with 2x2
    transposed convolutions and, with ``skips`` (default), concatenates the encoder's map of the
    same size; ``skips=False`` is the plain encoder-decoder baseline (same layers, the
    decoder's convolutions get only the upsampled map). (N, C, H, W) -> logits (N, K, H, W);
    H and W must be multiples of 2**depth.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 1, *, base: int = 16,
                 depth: int = 4, skips: bool = True):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth, self.skips = depth, skips
        widths = [base * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])] + [
            _double_conv(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.merge = nn.ModuleList([_double_conv(widths[i] * (2 if skips else 1), widths[i])
                                    for i in reversed(range(depth))])
        self.out = nn.Conv2d(widths[0], num_classes, 1)

    def deepest_path(self) -> list:
        """The layers of the longest input-to-output path, for
        ``labutils.shapes.receptive_window``: per level two padded 3x3 convolutions and a 2x2
        max-pool of stride 2, the bottleneck's two convolutions, then per level a 2x2 stride-2
        transposed convolution (output o from input o // 2) and two convolutions. The skip
        connections' paths are shorter: their windows lie inside this one's."""
        from labutils.shapes import Layer, Upsample

        conv, d = Layer(3, padding=1), self.depth
        return [conv, conv, Layer(2, stride=2)] * d + [conv, conv] + [Upsample(2), conv, conv] * d

    def forward(self, x):
        multiple = 2 ** self.depth
        if x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise ValueError(f"height and width must be multiples of {multiple}, got "
                             f"{tuple(x.shape[-2:])}; pad or crop the input")
        features = [self.down[0](x)]
        for block in self.down[1:]:
            features.append(block(F.max_pool2d(features[-1], 2)))
        y = features.pop()  # the bottleneck
        for up, merge in zip(self.up, self.merge):
            y = up(y)
            skip = features.pop()
            y = merge(torch.cat([skip, y], dim=1) if self.skips else y)
        return self.out(y)
