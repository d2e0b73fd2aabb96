"""Denoising: the noise model, image-quality metrics and the denoising networks of chapter 7.

Images are float tensors in [0, 1], (N, C, H, W). Noise levels ``sigma`` are on that scale
(sigma 25 on the 0-255 scale is 25 / 255).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Sequence

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
    """``model`` applied to float images (N, C, H, W) in eval mode and float32, batch by batch
    on the device of its parameters; returns CPU float32 clipped to [0, 1]."""
    model.eval()
    device = next(model.parameters()).device
    outs = [model(noisy[i:i + batch_size].to(device)).float().clamp(0, 1).cpu()
            for i in range(0, len(noisy), batch_size)]
    return torch.cat(outs)


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
    network predicts the noise and returns ``x - noise`` (residual learning). Any (H, W).

    The last convolution starts at zero (``zero_init=True``), so the untrained network is the
    identity and training starts from the noisy input's error instead of a random one.
    """

    def __init__(self, channels: int = 3, depth: int = 17, width: int = 64, *,
                 zero_init: bool = True):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, channels, 3, padding=1))
        if zero_init:
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
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


def decoder_output_paddings(encoder: Sequence[tuple], size: int) -> list[int]:
    """The ``output_padding`` that makes each transposed convolution of a mirrored decoder
    restore the size of the matching encoder input, for square inputs of ``size``.

    ``encoder`` is a list of ``(out_channels, kernel, stride, padding, _)`` as in
    ``AUTOENCODERS``; the decoder is assumed to reuse each layer's kernel, stride and padding in
    reverse order. Raises ``ValueError`` if some size cannot be restored.
    """
    from labutils.shapes import conv_output_size, conv_transpose_output_size

    sizes = [size]
    for _, k, s, p, _ in encoder:
        sizes.append(conv_output_size(sizes[-1], k, stride=s, padding=p))
    paddings = []
    for (_, k, s, p, _), n_in, n_out in zip(reversed(encoder), reversed(sizes[1:]),
                                            reversed(sizes[:-1])):
        op = n_out - conv_transpose_output_size(n_in, k, stride=s, padding=p)
        if not 0 <= op < s:
            raise ValueError(f"a transposed conv (k={k}, s={s}, p={p}) cannot map {n_in} back "
                             f"to {n_out}: it would need output_padding {op}")
        paddings.append(op)
    return paddings


def mirrored_autoencoder(name: str, size: int) -> ConvAutoencoder:
    """One of the source's autoencoders (``AUTOENCODERS``) rebuilt for square inputs of
    ``size``: the same layers, with the decoder's output paddings worked out for that size."""
    if name not in AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {name!r}; expected one of {list(AUTOENCODERS)}")
    encoder, decoder = AUTOENCODERS[name]
    paddings = decoder_output_paddings(encoder, size)
    decoder = [(out, k, s, p, op) for (out, k, s, p, _), op in zip(decoder, paddings)]
    return ConvAutoencoder(encoder, decoder)


class UpsampleDecoderAutoencoder(nn.Module):
    """A two-stage autoencoder whose decoder can upsample two ways (Odena et al., 2016):
    ``"transposed"``, a 3x3 transposed convolution with stride 2, or ``"resize"``, nearest-
    neighbour 2x upsampling followed by a 3x3 convolution. The encoders are identical."""

    def __init__(self, upsample: str, channels: int = 3, width: int = 32):
        super().__init__()
        if upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be 'transposed' or 'resize', got {upsample!r}")

        def up(c_in, c_out):
            if upsample == "transposed":
                return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
            return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(c_in, c_out, 3, padding=1))

        self.encoder = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU())
        self.decoder = nn.Sequential(up(width, width), nn.ReLU(), up(width, channels),
                                     nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


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


# --- classical denoisers (scikit-image and BM3D) on one float image (H, W, C) in [0, 1] ------

def _gaussian(img, sigma, s):
    from skimage.filters import gaussian
    return gaussian(img, sigma=s, channel_axis=-1)


def _median(img, sigma, size):
    from scipy.ndimage import median_filter
    return median_filter(img, size=(size, size, 1), mode="reflect")


def _tv(img, sigma, weight):
    from skimage.restoration import denoise_tv_chambolle
    return denoise_tv_chambolle(img, weight=weight * sigma, channel_axis=-1)


def _nl_means(img, sigma, h):
    from skimage.restoration import denoise_nl_means
    return denoise_nl_means(img, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                            fast_mode=True, channel_axis=-1)


def _wavelet(img, sigma, scale):
    from skimage.restoration import denoise_wavelet
    return denoise_wavelet(img, sigma=scale * sigma, wavelet="db1", mode="soft",
                           method="BayesShrink", convert2ycbcr=True, channel_axis=-1,
                           rescale_sigma=True)


def _bm3d(img, sigma, scale):
    try:
        import bm3d
    except ImportError as err:
        raise ImportError("BM3D needs the 'bm3d' package: pip install bm3d==4.0.3") from err
    return bm3d.bm3d_rgb(img, scale * sigma)


# name -> (function(image, sigma, parameter), parameter values to tune over). The parameters
# scale with sigma where the method has a noise-level knob; choose them on held-out images.
CLASSICAL: dict[str, tuple[Callable, tuple]] = {
    "Gaussian blur": (_gaussian, (0.5, 0.7, 1.0, 1.4, 2.0)),
    "median": (_median, (3, 5)),
    "total variation": (_tv, (0.5, 1.0, 1.5, 2.0, 3.0)),
    "non-local means": (_nl_means, (0.4, 0.5, 0.6, 0.8, 1.0)),
    "wavelet": (_wavelet, (0.75, 1.0, 1.5)),
    "BM3D": (_bm3d, (1.0,)),
}


def _classical_one(args):
    name, img, sigma, param = args
    fn = CLASSICAL[name][0]
    return np.clip(fn(img, sigma, param), 0, 1).astype(np.float32)


def classical_denoise(name: str, noisy: torch.Tensor, sigma: float, param, *,
                      workers: int = 1) -> torch.Tensor:
    """A method of ``CLASSICAL`` applied image by image to a float batch (N, C, H, W) in
    [0, 1]; ``workers`` > 1 spreads the images over that many processes (started with 'spawn':
    a script that calls this must guard its entry point with ``if __name__ == "__main__":``)."""
    if name not in CLASSICAL:
        raise ValueError(f"unknown method {name!r}; expected one of {list(CLASSICAL)}")
    if noisy.ndim != 4:
        raise ValueError(f"expected (N, C, H, W), got {tuple(noisy.shape)}")
    imgs = noisy.detach().cpu().permute(0, 2, 3, 1).double().numpy()
    jobs = [(name, img, float(sigma), param) for img in imgs]
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            outs = pool.map(_classical_one, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
    else:
        outs = [_classical_one(job) for job in jobs]
    return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).contiguous()
