"""Convolution forward/backward pairs: the four-loop definition and the im2col version."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from labutils.shapes import conv_output_size
from labutils.nplayers.checks import _check_dout, _check_float, _pad


def _conv_out_shape(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: int,
                    pad: int) -> tuple[int, int, int, int]:
    """(N, F, Ho, Wo); validates stride, padding and that the kernel fits height and width."""
    return (x_shape[0], w_shape[0],
            conv_output_size(x_shape[2], w_shape[2], stride=stride, padding=pad),
            conv_output_size(x_shape[3], w_shape[3], stride=stride, padding=pad))


def _conv_shapes(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int
                 ) -> tuple[int, int]:
    """The one validation both convolutions use; returns (Ho, Wo)."""
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"expected x (N, C, H, W) and w (F, C, kH, kW), got {x.shape} and {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but w expects {w.shape[1]}")
    if np.shape(b) != (w.shape[0],):
        raise ValueError(f"expected b ({w.shape[0]},), one bias per filter, got {np.shape(b)}")
    _check_float(x=x, w=w, b=b)
    return _conv_out_shape(x.shape, w.shape, stride, pad)[2:]


def conv_forward_loops(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1,
                       pad: int = 0) -> tuple[np.ndarray, tuple]:
    """Convolution by its definition: one dot product per (image, filter, row, column).

    x (N, C, H, W), w (F, C, kH, kW), b (F,) -> out (N, F, Ho, Wo).
    """
    ho, wo = _conv_shapes(x, w, b, stride, pad)
    n, f, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    xp = _pad(x, pad)
    out = np.empty((n, f, ho, wo), dtype=np.result_type(x, w, b))
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for c in range(wo):
                    patch = xp[i, :, r * stride:r * stride + kh, c * stride:c * stride + kw]
                    out[i, k, r, c] = np.sum(patch * w[k]) + b[k]
    return out, (x, w, stride, pad)


def conv_backward_loops(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of ``conv_forward_loops``: each output spreads back to its patch."""
    x, w, stride, pad = cache
    _check_dout(dout, _conv_out_shape(x.shape, w.shape, stride, pad))
    n, f, ho, wo = dout.shape
    kh, kw = w.shape[2:]
    xp = _pad(x, pad)
    dtype = np.result_type(dout, x, w)  # the same dtype as conv_backward's gradients
    dxp, dw = np.zeros(xp.shape, dtype), np.zeros(w.shape, dtype)
    for i in range(n):
        for k in range(f):
            for r in range(ho):
                for c in range(wo):
                    rs, cs = r * stride, c * stride
                    dw[k] += dout[i, k, r, c] * xp[i, :, rs:rs + kh, cs:cs + kw]
                    dxp[i, :, rs:rs + kh, cs:cs + kw] += dout[i, k, r, c] * w[k]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3)).astype(dtype)


def im2col(x: np.ndarray, kh: int, kw: int, *, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Every (C, kH, kW) patch as a row: (N, C, H, W) -> (N * Ho * Wo, C * kH * kW).

    ``sliding_window_view`` makes the patches a strided view; only the final reshape copies.
    """
    if x.ndim != 4:
        raise ValueError(f"expected x (N, C, H, W), got {x.shape}")
    conv_output_size(x.shape[2], kh, stride=stride, padding=pad)  # validates the arguments
    conv_output_size(x.shape[3], kw, stride=stride, padding=pad)
    xp = _pad(x, pad)
    windows = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = windows.shape[:4]  # windows: (N, C, Ho, Wo, kH, kW)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)


def col2im(cols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, *, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """The adjoint of ``im2col``: add every row back onto the patch it came from.

    Overlapping patches sum. The loop runs over the kH * kW kernel offsets, not over pixels.
    """
    n, c, h, w = x_shape
    ho = conv_output_size(h, kh, stride=stride, padding=pad)
    wo = conv_output_size(w, kw, stride=stride, padding=pad)
    if cols.shape != (n * ho * wo, c * kh * kw):
        raise ValueError(f"expected cols (N * Ho * Wo, C * kH * kW) = {(n * ho * wo, c * kh * kw)} "
                         f"for x {tuple(x_shape)}, got {cols.shape}")
    patches = cols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, kH, kW, Ho, Wo)
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xp[:, :, u:u + stride * ho:stride, v:v + stride * wo:stride] += patches[:, :, u, v]
    return xp[:, :, pad:pad + h, pad:pad + w]


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int = 1,
                 pad: int = 0) -> tuple[np.ndarray, tuple]:
    """Convolution as one matrix product: im2col(x) @ w.reshape(F, -1).T + b.

    x (N, C, H, W), w (F, C, kH, kW), b (F,) -> out (N, F, Ho, Wo).
    """
    ho, wo = _conv_shapes(x, w, b, stride, pad)
    f, _, kh, kw = w.shape
    cols = im2col(x, kh, kw, stride=stride, pad=pad)          # (N*Ho*Wo, C*kH*kW)
    out = cols @ w.reshape(f, -1).T + b                        # (N*Ho*Wo, F)
    out = out.reshape(x.shape[0], ho, wo, f).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (x.shape, cols, w, stride, pad)


def conv_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of ``conv_forward``: two matrix products and a col2im."""
    x_shape, cols, w, stride, pad = cache
    f, _, kh, kw = w.shape
    _check_dout(dout, _conv_out_shape(x_shape, w.shape, stride, pad))
    dtype = np.result_type(dout, cols, w)  # the same dtype as conv_backward_loops' gradients
    dout_mat = dout.transpose(0, 2, 3, 1).reshape(-1, f)      # (N*Ho*Wo, F)
    dw = (dout_mat.T @ cols).reshape(w.shape).astype(dtype, copy=False)
    dx = col2im((dout_mat @ w.reshape(f, -1)).astype(dtype, copy=False), x_shape, kh, kw,
                stride=stride, pad=pad)
    return dx, dw, dout_mat.sum(axis=0).astype(dtype, copy=False)
