"""The Gaussian noise model, noisy batches drawn on the fly, a model applied in batches."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator

import torch
from torch import nn


def add_gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator, *,
                       clip: bool = True) -> torch.Tensor:
    """x + sigma * N(0, 1) noise drawn from ``generator``, clipped to [0, 1] if ``clip``.

    ``x``: float images in [0, 1] (any shape; not changed); ``sigma`` >= 0 on that scale (25 /
    255 for sigma 25 on the 0-255 scale). The noise is drawn on the generator's device and
    added on ``x``'s. ``ValueError`` for a negative or NaN sigma, ``TypeError`` for integer
    images or a missing generator.
    """
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0 (on the [0, 1] scale: 25 / 255 for 25), "
                         f"got {sigma}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"pass a torch.Generator (e.g. torch.Generator().manual_seed(0)), "
                        f"got {type(generator).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got {x.dtype}; convert with "
                        f"x.float() / 255")
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
    noisy = x + sigma * noise
    return noisy.clamp(0, 1) if clip else noisy


class NoisyBatches:
    """(noisy, clean) float batches in [0, 1] from clean images, for ``labutils.train.fit``.

    ``images``: uint8 (N, C, H, W) (0-255) or float in [0, 1]. ``sigma``: one noise level, or a
    ``(low, high)`` range from which every image draws its own level uniformly (blind denoising).
    Training batches (``fixed=False``) get fresh noise and a new order every pass; with
    ``fixed=True`` every pass yields the same noisy images in the same order (a test set).
    """

    def __init__(self, images: torch.Tensor, sigma: float | tuple[float, float], batch_size: int,
                 *, seed: int = 0, fixed: bool = False, clip: bool = True,
                 device: torch.device | str = "cpu"):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise TypeError(f"images must be uint8 (0-255) or float in [0, 1], got "
                            f"{images.dtype}")
        if images.is_floating_point() and images.numel() and \
                not (images.min() >= 0 and images.max() <= 1):
            raise ValueError(f"float images must lie in [0, 1], got values in "
                             f"[{float(images.min()):.4g}, {float(images.max()):.4g}]; for "
                             f"0-255 floats pass images / 255 (or the uint8 images)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        low, high = (sigma, sigma) if isinstance(sigma, numbers.Real) else sigma
        if not 0 <= low <= high:
            raise ValueError(f"sigma must be >= 0 (a range must have low <= high), got {sigma}")
        self.images, self.sigma, self.batch_size = images, (float(low), float(high)), batch_size
        self.seed, self.fixed, self.clip, self.device = seed, fixed, clip, torch.device(device)
        self._generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(self.seed) if self.fixed else self._generator
        n = len(self.images)
        order = torch.arange(n) if self.fixed else torch.randperm(n, generator=g)
        low, high = self.sigma
        for start in range(0, n, self.batch_size):
            clean = self.images[order[start:start + self.batch_size]]
            clean = clean.float() / 255 if clean.dtype == torch.uint8 else clean.float()
            sigma = low + (high - low) * torch.rand(len(clean), 1, 1, 1, generator=g)
            noisy = clean + sigma * torch.randn(clean.shape, generator=g)
            noisy = noisy.clamp(0, 1) if self.clip else noisy
            yield noisy.to(self.device), clean.to(self.device)


@torch.inference_mode()
def denoise_all(model: nn.Module, noisy: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """``model`` applied to float images (N, C, H, W) batch by batch, on the device of its
    parameters (the CPU for a model without any); returns CPU float32 clipped to [0, 1], (N, C,
    H', W') as the model outputs (an empty batch gives an empty result of the input's size).
    The model is put in eval mode and left there; ``noisy`` is not changed.

    Raises:
        ValueError: ``noisy`` not (N, C, H, W), ``batch_size`` < 1.
    """
    if noisy.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(noisy.shape)}; for "
                         f"one image pass x.unsqueeze(0)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    if len(noisy) == 0:
        return torch.zeros(noisy.shape, dtype=torch.float32)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    outs = [model(noisy[i:i + batch_size].to(device)).float().clamp(0, 1).cpu()
            for i in range(0, len(noisy), batch_size)]
    return torch.cat(outs)
