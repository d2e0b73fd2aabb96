"""Max and average pooling forward/backward pairs on strided windows."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from labutils.shapes import conv_output_size
from labutils.nplayers.checks import _check_dout


# ---------------------------------------------------------------------------------------------
# Pooling

def _windows(x: np.ndarray, size: int, stride: int) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"expected x (N, C, H, W), got {x.shape}")
    conv_output_size(x.shape[2], size, stride=stride)  # validates size, stride and that the
    conv_output_size(x.shape[3], size, stride=stride)  # window fits both height and width
    win = sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return win.reshape(*win.shape[:4], size * size)      # (N, C, Ho, Wo, size*size)


def _scatter(per_offset: np.ndarray, x_shape: tuple[int, ...], size: int, stride: int) -> np.ndarray:
    """Add per-window gradients (N, C, Ho, Wo, size*size) back onto an input-shaped array."""
    dx = np.zeros(x_shape, dtype=per_offset.dtype)
    ho, wo = per_offset.shape[2:4]
    for u in range(size):
        for v in range(size):
            dx[:, :, u:u + stride * ho:stride, v:v + stride * wo:stride] += per_offset[..., u * size + v]
    return dx


def maxpool_forward(x: np.ndarray, *, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Max over size x size windows: (N, C, H, W) -> (N, C, Ho, Wo)."""
    stride = size if stride is None else stride  # None: non-overlapping; 0 is an error
    win = _windows(x, size, stride)
    arg = win.argmax(axis=-1)  # the first maximum wins ties, as in PyTorch
    out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return out, (x.shape, arg, size, stride)


def maxpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Each window's gradient goes to the position of its maximum."""
    x_shape, arg, size, stride = cache
    _check_dout(dout, arg.shape)
    onehot = (arg[..., None] == np.arange(size * size)).astype(dout.dtype)
    return _scatter(onehot * dout[..., None], x_shape, size, stride)


def avgpool_forward(x: np.ndarray, *, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, tuple]:
    """Mean over size x size windows: (N, C, H, W) -> (N, C, Ho, Wo)."""
    stride = size if stride is None else stride  # None: non-overlapping; 0 is an error
    return _windows(x, size, stride).mean(axis=-1), (x.shape, size, stride)


def avgpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Each window's gradient is shared equally by its size * size inputs."""
    x_shape, size, stride = cache
    _check_dout(dout, (*x_shape[:2], conv_output_size(x_shape[2], size, stride=stride),
                       conv_output_size(x_shape[3], size, stride=stride)))
    share = np.broadcast_to(dout[..., None] / (size * size), (*dout.shape, size * size))
    return _scatter(share, x_shape, size, stride)
