"""PSNR and SSIM against the clean image, and the checkerboard energy of a residual."""

from __future__ import annotations

import numpy as np
import torch


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


def checkerboard_energy(residual: torch.Tensor) -> torch.Tensor:
    """Share of a residual's power at the period-2 frequencies (pi, 0), (0, pi), (pi, pi): the
    signature of a checkerboard. (N, C, H, W) with even H, W -> (N,) in [0, 1]."""
    if residual.ndim != 4 or residual.shape[-1] % 2 or residual.shape[-2] % 2:
        raise ValueError(f"expected (N, C, H, W) with even H and W, got {tuple(residual.shape)}")
    r = residual.double() - residual.double().mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(r).abs().pow(2)
    h, w = r.shape[-2] // 2, r.shape[-1] // 2
    nyquist = power[..., h, 0] + power[..., 0, w] + power[..., h, w]
    return nyquist.sum(dim=1) / power.sum(dim=(1, 2, 3)).clamp_min(1e-300)
