"""Denoising: the noise model, image-quality metrics and the denoising networks of chapter 7.

Images are float tensors in [0, 1], (N, C, H, W). Noise levels ``sigma`` are on that scale
(sigma 25 on the 0-255 scale is 25 / 255).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def add_gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator, *,
                       clip: bool = True) -> torch.Tensor:
    """x + sigma * N(0, 1) noise drawn from ``generator``, clipped to [0, 1] if ``clip``."""
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    noisy = x + sigma * noise
    return noisy.clamp(0, 1) if clip else noisy


def _check_pair(clean: torch.Tensor, estimate: torch.Tensor) -> None:
    if clean.shape != estimate.shape or clean.ndim != 4:
        raise ValueError(f"expected two (N, C, H, W) batches of the same shape, got "
                         f"{tuple(clean.shape)} and {tuple(estimate.shape)}")


def psnr(clean: torch.Tensor, estimate: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of every image: 10 log10(range^2 / MSE). (N,) float64."""
    _check_pair(clean, estimate)
    mse = (clean.double() - estimate.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range ** 2 / mse)


def ssim(clean: torch.Tensor, estimate: torch.Tensor, *, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity of every image (N,), as Wang et al. (2004) define it: Gaussian
    weights (sigma 1.5), population covariances, computed by scikit-image per image."""
    from skimage.metrics import structural_similarity

    _check_pair(clean, estimate)
    a = clean.detach().double().cpu().numpy()
    b = estimate.detach().double().cpu().numpy()
    return np.array([structural_similarity(x, y, data_range=data_range, channel_axis=0,
                                           gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False) for x, y in zip(a, b)])


class TwoLayerDenoiser(nn.Module):
    """The source's denoiser: 3x3 conv (channels -> 30) + ReLU, 3x3 conv (30 -> channels) +
    sigmoid. (N, C, H, W) -> (N, C, H, W) in (0, 1)."""

    def __init__(self, channels: int = 3, width: int = 30):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, channels, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class DnCNN(nn.Module):
    """DnCNN (Zhang et al., 2017): conv + ReLU, (depth - 2) x (conv + BN + ReLU), conv; the
    network predicts the noise and returns ``x - noise`` (residual learning). Any (H, W)."""

    def __init__(self, channels: int = 3, depth: int = 17, width: int = 64):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        self.noise = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.noise(x)


# The source's three denoising autoencoders for 150x150 images, as layer specifications:
# (out_channels, kernel, stride, padding, output_padding); output_padding None = a Conv2d.
AUTOENCODERS = {
    "128x10x10": ([(16, 3, 2, 1, None), (32, 3, 2, 1, None), (64, 3, 2, 1, None),
                   (128, 3, 2, 1, None)],
                  [(64, 3, 2, 1, 0), (32, 3, 2, 1, 1), (16, 3, 2, 1, 0), (3, 3, 2, 1, 1)]),
    "32x38x38": ([(16, 3, 2, 1, None), (32, 3, 2, 1, None)],
                 [(16, 3, 2, 1, 0), (3, 3, 2, 1, 1)]),
    "32x71x71": ([(16, 5, 1, 0, None), (32, 5, 2, 0, None)],
                 [(16, 5, 2, 0, 1), (3, 5, 1, 0, 0)]),
}


class ConvAutoencoder(nn.Module):
    """Strided convolutions down to a latent map, transposed convolutions back up, ReLU
    between layers and a sigmoid at the end. ``ConvAutoencoder.source(name)`` builds one of the
    source's three (``AUTOENCODERS``); sizes follow the conv / transposed-conv formulas."""

    def __init__(self, encoder: list[tuple], decoder: list[tuple], in_channels: int = 3):
        super().__init__()
        enc, c = [], in_channels
        for i, (out, k, s, p, _) in enumerate(encoder):
            enc.append(nn.Conv2d(c, out, k, stride=s, padding=p))
            if i < len(encoder) - 1:
                enc.append(nn.ReLU())
            c = out
        dec = []
        for i, (out, k, s, p, op) in enumerate(decoder):
            dec.append(nn.ConvTranspose2d(c, out, k, stride=s, padding=p, output_padding=op))
            dec.append(nn.ReLU() if i < len(decoder) - 1 else nn.Sigmoid())
            c = out
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)

    @classmethod
    def source(cls, name: str) -> "ConvAutoencoder":
        if name not in AUTOENCODERS:
            raise ValueError(f"unknown autoencoder {name!r}; expected one of {list(AUTOENCODERS)}")
        return cls(*AUTOENCODERS[name])

    def forward(self, x):
        return self.decoder(self.encoder(x))
