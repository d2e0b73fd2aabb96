"""Batch normalisation in NumPy: a pure forward/backward pair, plain (N, D) and spatial (N, C, H, W).

Conventions follow PyTorch's ``F.batch_norm``: training mode normalises with the batch mean and
the biased batch variance, and updates the running statistics as
``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* batch variance;
inference mode normalises with the running statistics. Nothing is mutated: the updated running
statistics are returned in the cache (``cache.running_mean``, ``cache.running_var``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchNormCache:
    """What the backward pass needs, plus the running statistics after this call."""

    x_hat: np.ndarray               # (N, D) normalised input
    gamma: np.ndarray               # (D,)
    inv_std: np.ndarray             # (D,) 1 / sqrt(var + eps), batch or running variance
    train: bool                     # batch statistics (True) or running statistics (False)
    running_mean: np.ndarray | None  # (D,) after the update (None when not tracked)
    running_var: np.ndarray | None   # (D,)


def _check_vector(name: str, v: np.ndarray | None, d: int) -> None:
    if v is not None and np.shape(v) != (d,):
        raise ValueError(f"expected {name} of shape ({d},), one value per feature, "
                         f"got {np.shape(v)}")


def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5,
                      momentum: float = 0.1, running_mean: np.ndarray | None = None,
                      running_var: np.ndarray | None = None,
                      train: bool = True) -> tuple[np.ndarray, BatchNormCache]:
    """gamma * (x - mean) / sqrt(var + eps) + beta per feature: x (N, D) -> out (N, D).

    In training the running statistics may be None (not tracked, as in PyTorch); in inference
    they are required.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected x (N, D), got shape {x.shape}; for images (N, C, H, W) "
                         f"use spatial_batchnorm_forward")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"expected a floating-point x, got {x.dtype}; convert with "
                        f"x.astype(np.float32)")
    n, d = x.shape
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        _check_vector(name, v, d)
    if (running_mean is None) != (running_var is None):
        raise ValueError("give both running_mean and running_var, or neither")
    if not eps > 0:
        raise ValueError(f"eps must be positive (it keeps 1 / sqrt(var + eps) finite), got {eps}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    new_mean, new_var = running_mean, running_var
    if train:
        if n < 2:
            raise ValueError(f"training mode needs more than one value per feature to estimate a "
                             f"variance, got a batch of {n}; use a larger batch or train=False")
        mean, var = x.mean(axis=0), x.var(axis=0)                  # (D,), biased variance
        if running_mean is not None:
            new_mean = (1 - momentum) * running_mean + momentum * mean
            new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        if running_mean is None:
            raise ValueError("inference mode (train=False) normalises with the running "
                             "statistics: pass running_mean and running_var")
        mean, var = running_mean, running_var
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std                                      # (N, D)
    out = gamma * x_hat + beta
    return out, BatchNormCache(x_hat, np.asarray(gamma), inv_std, train, new_mean, new_var)


def batchnorm_backward(dout: np.ndarray, cache: BatchNormCache
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dgamma, dbeta) of ``batchnorm_forward``; dout (N, D).

    In training the mean and variance depend on every sample, so dx has two extra terms that
    remove the gradient's mean and its projection on x_hat:
    dx = gamma * inv_std * (dout - mean(dout) - x_hat * mean(dout * x_hat)).
    """
    if dout.shape != cache.x_hat.shape:
        raise ValueError(f"expected dout of the forward output's shape {cache.x_hat.shape}, "
                         f"got {dout.shape}")
    dbeta = dout.sum(axis=0)
    dgamma = (dout * cache.x_hat).sum(axis=0)
    if cache.train:
        dx_hat = dout - dout.mean(axis=0) - cache.x_hat * (dout * cache.x_hat).mean(axis=0)
    else:   # the statistics are constants
        dx_hat = dout
    return cache.gamma * cache.inv_std * dx_hat, dgamma, dbeta


def _to_rows(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])           # (N*H*W, C)


def _from_rows(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    n, c, h, w = shape
    return np.ascontiguousarray(rows.reshape(n, h, w, c).transpose(0, 3, 1, 2))


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *,
                              eps: float = 1e-5, momentum: float = 0.1,
                              running_mean: np.ndarray | None = None,
                              running_var: np.ndarray | None = None,
                              train: bool = True) -> tuple[np.ndarray, tuple]:
    """Batch norm per channel of images, x (N, C, H, W): every pixel of a channel is a sample.

    Returns (out, (cache, shape)); the updated running statistics are cache.running_mean/var.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"expected x (N, C, H, W), got shape {x.shape}")
    out, cache = batchnorm_forward(_to_rows(x), gamma, beta, eps=eps, momentum=momentum,
                                   running_mean=running_mean, running_var=running_var,
                                   train=train)
    return _from_rows(out, x.shape), (cache, x.shape)


def spatial_batchnorm_backward(dout: np.ndarray, cache: tuple
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dgamma, dbeta) of ``spatial_batchnorm_forward``; dout (N, C, H, W)."""
    inner, shape = cache
    if dout.shape != tuple(shape):
        raise ValueError(f"expected dout of the forward output's shape {tuple(shape)}, "
                         f"got {dout.shape}")
    dx, dgamma, dbeta = batchnorm_backward(_to_rows(dout), inner)
    return _from_rows(dx, shape), dgamma, dbeta
