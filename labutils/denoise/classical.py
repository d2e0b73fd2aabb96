"""The classical denoisers (scikit-image filters, wavelets, BM3D), image by image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


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
    a script that calls this must guard its entry point with ``if __name__ == "__main__":``).
    Returns CPU float32 (N, C, H, W) in [0, 1]; ``noisy`` (any device) is not changed.

    Raises:
        ValueError: an unknown method, a batch that is not (N, C, H, W), a negative sigma.
        TypeError: integer images (convert with x.float() / 255).
    """
    if name not in CLASSICAL:
        raise ValueError(f"unknown method {name!r}; expected one of {list(CLASSICAL)}")
    if noisy.ndim != 4:
        raise ValueError(f"expected (N, C, H, W), got {tuple(noisy.shape)}")
    if not noisy.is_floating_point():
        raise TypeError(f"expected float images in [0, 1], got {noisy.dtype}; convert with "
                        f"x.float() / 255")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0 (on the [0, 1] scale), got {sigma}")
    if len(noisy) == 0:
        return torch.zeros(noisy.shape, dtype=torch.float32)
    imgs = noisy.detach().cpu().permute(0, 2, 3, 1).double().numpy()
    jobs = [(name, img, float(sigma), param) for img in imgs]
    if workers > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            outs = pool.map(_classical_one, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
    else:
        outs = [_classical_one(job) for job in jobs]
    return torch.from_numpy(np.stack(outs)).permute(0, 3, 1, 2).contiguous()
