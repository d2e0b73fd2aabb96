"""PSNR and SSIM against the clean image, and the checkerboard energy of a residual."""

from __future__ import annotations

import math

import numpy as np
import torch


def _check_pair(clean: torch.Tensor, estimate: torch.Tensor, data_range: float | None
                ) -> float:
    """Check two batches for PSNR/SSIM; return the data range to use."""
    if clean.shape != estimate.shape or clean.ndim != 4:
        raise ValueError(f"expected two (N, C, H, W) batches of the same shape, got "
                         f"{tuple(clean.shape)} and {tuple(estimate.shape)}")
    for t in (clean, estimate):
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(f"expected real images, got {t.dtype}")
        if not t.is_floating_point() and data_range is None:
            raise TypeError(
                f"got {t.dtype} images without a data_range: for 0-255 {t.dtype} images pass "
                f"data_range=255 (or convert them with x.float() / 255 and keep the default "
                f"range 1)")
    if data_range is None:
        data_range = 1.0
    if not (isinstance(data_range, (int, float)) and math.isfinite(data_range)
            and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    for name, t in (("clean", clean), ("estimate", estimate)):
        if t.numel() == 0:
            continue
        low, high = float(t.min()), float(t.max())
        if math.isnan(low) or math.isnan(high):
            raise ValueError(f"{name} holds NaN values")
        if low < 0 or high > data_range:
            raise ValueError(
                f"{name} has values in [{low:.4g}, {high:.4g}], outside [0, {data_range:g}] "
                f"(data_range={data_range:g}): clip the images (x.clamp(0, {data_range:g})), "
                f"or for 0-255 images pass data_range=255 or divide by 255")
    return float(data_range)


def psnr(clean: torch.Tensor, estimate: torch.Tensor, *,
         data_range: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of every image: 10 log10(range^2 / MSE). (N,) float64
    on the inputs' device; +inf for an exact estimate.

    Args:
        clean, estimate: (N, C, H, W) batches of the same shape. Floats in [0, 1] by default;
            integer images (uint8 0-255) only with an explicit ``data_range`` (e.g. 255), and
            then they are scored exactly as ``skimage.metrics.peak_signal_noise_ratio`` does.
        data_range: the largest possible value (the smallest is 0); default 1 for floats.

    Raises:
        TypeError: integer images without ``data_range``.
        ValueError: shapes, NaN, a non-positive ``data_range``, or values outside
            [0, data_range] (e.g. 0-255 floats with the default range 1, an unclipped image).
    """
    data_range = _check_pair(clean, estimate, data_range)
    mse = (clean.double() - estimate.double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range ** 2 / mse)


def ssim(clean: torch.Tensor, estimate: torch.Tensor, *,
         data_range: float | None = None) -> np.ndarray:
    """Structural similarity of every image (N,), as Wang et al. (2004) define it: Gaussian
    weights (sigma 1.5), population covariances, computed by scikit-image per image.

    Inputs, ``data_range`` and errors as for ``psnr``; height and width must be at least 7
    (the Gaussian window), else ``ValueError``.
    """
    from skimage.metrics import structural_similarity

    data_range = _check_pair(clean, estimate, data_range)
    if min(clean.shape[-2:]) < 7:
        raise ValueError(f"SSIM needs images of at least 7 x 7 pixels (its window), got "
                         f"{tuple(clean.shape[-2:])}")
    a = clean.detach().double().cpu().numpy()
    b = estimate.detach().double().cpu().numpy()
    return np.array([structural_similarity(x, y, data_range=data_range, channel_axis=0,
                                           gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False) for x, y in zip(a, b)])


def checkerboard_energy(residual: torch.Tensor) -> torch.Tensor:
    """Share of a residual's power at the period-2 frequencies (pi, 0), (0, pi), (pi, pi): the
    signature of a checkerboard. (N, C, H, W) with even H, W -> (N,) float64 in [0, 1] (0 for
    a constant residual); ``ValueError`` for other shapes."""
    if residual.ndim != 4 or residual.shape[-1] % 2 or residual.shape[-2] % 2:
        raise ValueError(f"expected (N, C, H, W) with even H and W, got {tuple(residual.shape)}")
    r = residual.double() - residual.double().mean(dim=(2, 3), keepdim=True)
    power = torch.fft.fft2(r).abs().pow(2)
    h, w = r.shape[-2] // 2, r.shape[-1] // 2
    nyquist = power[..., h, 0] + power[..., 0, w] + power[..., h, w]
    return nyquist.sum(dim=1) / power.sum(dim=(1, 2, 3)).clamp_min(1e-300)
