"""A CNN in NumPy: layers as pure ``*_forward -> (out, cache)`` / ``*_backward(dout, cache)``
pairs, thin layer objects around them, a ``Sequential`` model and momentum SGD.

Images are (N, C, H, W) like PyTorch, conv weights (F, C, kH, kW). Nothing here mutates its
inputs. Forward passes compute in the dtype of the input (float64 for gradient checks).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from labutils.shapes import conv_output_size


# ---------------------------------------------------------------------------------------------
# Convolution: the definition (loops) and the fast version (im2col / col2im)

def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def _check_float(**arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if not np.issubdtype(np.asarray(a).dtype, np.floating):
            raise TypeError(f"expected floating-point arrays, but {name} is {np.asarray(a).dtype}; "
                            f"convert it first, e.g. {name}.astype(np.float32)")


def _check_dout(dout: np.ndarray, expected: tuple[int, ...]) -> None:
    if dout.shape != tuple(expected):
        raise ValueError(f"expected dout of the forward output's shape {tuple(expected)}, "
                         f"got {dout.shape}")


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


# ---------------------------------------------------------------------------------------------
# Pointwise, dense and loss

def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(0, x), any shape."""
    return np.maximum(x, 0), x > 0


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    _check_dout(dout, cache.shape)
    return dout * cache


def linear_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """x (N, D) @ w (D, M) + b (M,) -> (N, M)."""
    if w.ndim != 2:
        raise ValueError(f"expected w (D, M), got {w.shape}")
    if x.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"expected x (N, {w.shape[0]}), got {x.shape}")
    if np.shape(b) != (w.shape[1],):
        raise ValueError(f"expected b ({w.shape[1]},), one bias per output, got {np.shape(b)}")
    return x @ w + b, (x, w)


def linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, w = cache
    _check_dout(dout, (x.shape[0], w.shape[1]))
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def softmax_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) (N, K) against class indices (N,), and its gradient.

    Stable: the row maximum is subtracted before exponentiating (log-sum-exp). Targets outside
    [0, K) are an error, as in PyTorch (NumPy would read -1 as the last class).
    """
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {logits.shape}, {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise TypeError(f"expected targets as integer class indices, got {targets.dtype}; "
                        f"convert with targets.astype(np.int64)")
    bad = (targets < 0) | (targets >= logits.shape[1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"targets must be class indices in [0, {logits.shape[1]}), found "
                         f"{targets[i]} at position {i}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), targets].mean()
    grad = np.exp(log_probs)
    grad[np.arange(n), targets] -= 1
    return float(loss), grad / n


def l2_penalty(w: np.ndarray, strength: float) -> tuple[float, np.ndarray]:
    """strength * sum(w**2) and its gradient 2 * strength * w."""
    return float(strength * np.sum(w * w)), 2 * strength * w


# ---------------------------------------------------------------------------------------------
# Layer objects and a model, for training

class Layer:
    """A layer keeps its parameters, their gradients and the cache of its last forward pass."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Conv2d(Layer):
    """Convolution with He-initialised weights; ``naive=True`` uses the loop implementation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 rng: np.random.Generator, stride: int = 1, pad: int = 0, naive: bool = False,
                 dtype=np.float32):
        super().__init__()
        fan_in = in_channels * kernel_size * kernel_size
        self.params["w"] = (rng.standard_normal((out_channels, in_channels, kernel_size, kernel_size))
                            * np.sqrt(2 / fan_in)).astype(dtype)
        self.params["b"] = np.zeros(out_channels, dtype=dtype)
        self.stride, self.pad = stride, pad
        self._fwd, self._bwd = (conv_forward_loops, conv_backward_loops) if naive else (conv_forward, conv_backward)

    def forward(self, x):
        out, self.cache = self._fwd(x, self.params["w"], self.params["b"], stride=self.stride, pad=self.pad)
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = self._bwd(dout, self.cache)
        return dx


class Linear(Layer):
    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator,
                 dtype=np.float32):
        super().__init__()
        self.params["w"] = (rng.standard_normal((in_features, out_features))
                            * np.sqrt(2 / in_features)).astype(dtype)
        self.params["b"] = np.zeros(out_features, dtype=dtype)

    def forward(self, x):
        out, self.cache = linear_forward(x, self.params["w"], self.params["b"])
        return out

    def backward(self, dout):
        dx, self.grads["w"], self.grads["b"] = linear_backward(dout, self.cache)
        return dx


class ReLU(Layer):
    def forward(self, x):
        out, self.cache = relu_forward(x)
        return out

    def backward(self, dout):
        return relu_backward(dout, self.cache)


class MaxPool2d(Layer):
    def __init__(self, size: int = 2, stride: int | None = None):
        super().__init__()
        self.size, self.stride = size, stride

    def forward(self, x):
        out, self.cache = maxpool_forward(x, size=self.size, stride=self.stride)
        return out

    def backward(self, dout):
        return maxpool_backward(dout, self.cache)


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        out, self.cache = avgpool_forward(x, size=self.size, stride=self.stride)
        return out

    def backward(self, dout):
        return avgpool_backward(dout, self.cache)


class Flatten(Layer):
    def forward(self, x):
        self.cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self.cache)


class Sequential:
    """Layers applied in order; ``loss`` adds L2 regularisation of every weight named ``w``."""

    def __init__(self, *layers: Layer, l2: float = 0.0):
        self.layers, self.l2 = list(layers), l2

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def loss(self, x: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, loss (cross-entropy + L2) and backward; fills every layer's ``grads``."""
        logits = self.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, targets)
        self.backward(dlogits)
        for layer in self.layers:
            if "w" in layer.params and self.l2:
                penalty, grad = l2_penalty(layer.params["w"], self.l2)
                loss += penalty
                layer.grads["w"] = layer.grads["w"] + grad
        return loss, logits

    def parameters(self) -> list[tuple[Layer, str]]:
        return [(layer, name) for layer in self.layers for name in layer.params]

    def predict(self, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
        return np.concatenate([self.forward(x[i:i + batch_size]).argmax(axis=1)
                               for i in range(0, len(x), batch_size)])


class MomentumSGD:
    """SGD with momentum in PyTorch's convention: v <- momentum * v + grad; param <- param - lr * v.

    ``lr`` may be changed between steps (a schedule); the velocity does not depend on it.
    """

    def __init__(self, model: Sequential, *, lr: float, momentum: float = 0.9):
        self.model, self.lr, self.momentum = model, lr, momentum
        self.velocity = {(id(layer), name): np.zeros_like(layer.params[name])
                         for layer, name in model.parameters()}

    def step(self) -> None:
        for layer, name in self.model.parameters():
            if name not in layer.grads:
                raise RuntimeError(f"{type(layer).__name__} has no gradient for {name!r}: call "
                                   f"model.loss(x, targets) (or model.backward) before step()")
            v = self.velocity[(id(layer), name)]
            v *= self.momentum
            v += layer.grads[name]
            layer.params[name] = layer.params[name] - self.lr * v
