"""ReLU and fully connected forward/backward pairs, softmax cross-entropy, L2 penalty."""

from __future__ import annotations

import numpy as np

from labutils.nplayers.checks import _check_dout


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
