"""The speed-run network: conv groups, frozen batch-norm scales, the whitening layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvGroup(nn.Module):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU. (N, c_in, H, W) -> (N, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int, *, frozen_bn_scale: bool = True):
        super().__init__()
        self.conv1 = _conv(c_in, c_out)
        self.norm1 = _batch_norm(c_out, frozen_bn_scale)
        self.conv2 = _conv(c_out, c_out)
        self.norm2 = _batch_norm(c_out, frozen_bn_scale)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    # The first c_in filters start as identities (Dirac kernels): the group starts near a
    # pass-through of its input, which lets the large learning rates work from step one.
    nn.init.dirac_(conv.weight.data[:min(c_in, c_out)])
    return conv


def _batch_norm(channels: int, frozen_scale: bool) -> nn.BatchNorm2d:
    # momentum 0.4: running statistics follow the last few batches (short runs, big batches).
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(not frozen_scale)
    return norm


class SpeedrunNet(nn.Module):
    """2x2 whitening conv (3 -> 24 channels, no padding) + GELU, three ``ConvGroup``s,
    3x3 max-pool, a bias-free linear layer and a fixed 1/9 output scale.
    (N, 3, 32, 32) -> logits (N, 10); spatial size 32 -> 31 -> 15 -> 7 -> 3 -> 1."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), num_classes: int = 10, *,
                 frozen_bn_scale: bool = True):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        nn.init.zeros_(self.whiten.bias)  # as airbench: the whitened patches start unshifted
        groups, c = [], 24
        for w in widths:
            groups.append(ConvGroup(c, w, frozen_bn_scale=frozen_bn_scale))
            c = w
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c, num_classes, bias=False)
        self.scale = 1 / 9

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        x = F.max_pool2d(x, 3).flatten(1)  # (N, widths[-1])
        return self.head(x) * self.scale


@torch.no_grad()
def whitening_filters(images: torch.Tensor, *, size: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """Filters (2 * C*size*size, C, size, size) that whiten the size x size patches of ``images``.

    Every patch (flattened to C*size*size values) is projected on the eigenvectors of the patches'
    second-moment matrix and divided by the square root of the eigenvalue (+ ``eps``); the
    filters come as a +/- pair so that a following ReLU-like nonlinearity keeps both signs.
    images: normalised float (N, C, H, W).
    """
    n, c = images.shape[:2]
    patches = images.double().unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H', W', s, s)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size)
    second_moment = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps).unsqueeze(1)  # one per row
    filters = filters.reshape(-1, c, size, size)
    return torch.cat([filters, -filters]).float()
