"""Numerical gradients by centred differences, for checking hand-written backward passes."""

from __future__ import annotations

from typing import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, *,
                       h: float = 1e-4) -> np.ndarray:
    """d f / d x by centred differences (f(x + h) - f(x - h)) / 2h, one element at a time.

    ``x`` must be float64 (float32 rounding would swamp the differences); it is restored after,
    also when ``f`` raises.
    The default step is large for a finite difference on purpose: CNN layers are piecewise
    linear, so the truncation error (O(h^2) for smooth functions) vanishes and the rounding
    error, which shrinks as h grows, dominates.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}; "
                        f"convert with x.astype(np.float64)")
    if not h > 0:
        raise ValueError(f"the step h must be positive, got {h}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        try:
            x[i] = old + h
            plus = f(x)
            x[i] = old - h
            minus = f(x)
        finally:
            x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / (max |a| + max |b|): the worst difference relative to the arrays' scale.

    Element-wise ratios are not used: an entry whose true gradient is nearly zero would turn a
    harmless 1e-12 rounding difference into a large 'relative' error. The arrays must have the
    same shape (no broadcasting) and be finite: a NaN would otherwise compare as 'no error'.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"expected two arrays of the same shape, got {a.shape} and {b.shape}")
    for name, array in (("a", a), ("b", b)):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} is not finite ({np.count_nonzero(~np.isfinite(array))} "
                             f"NaN or inf entries): the gradient itself is broken")
    scale = np.abs(a).max(initial=0.0) + np.abs(b).max(initial=0.0)
    return float(np.abs(a - b).max(initial=0.0) / scale) if scale > 0 else 0.0


def check_backward(forward: Callable[..., tuple], backward: Callable, inputs: dict[str, np.ndarray],
                   *, seed: int = 0, **kwargs) -> dict[str, float]:
    """Relative error between analytic and numerical gradients for every array in ``inputs``.

    ``forward(**inputs, **kwargs) -> (out, cache)`` and ``backward(dout, cache)`` returning the
    gradients in the order of ``inputs`` (a single array if there is one input). The scalar that
    is differentiated is sum(out * dout) for a fixed random dout.
    """
    out, cache = forward(**inputs, **kwargs)
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) < len(inputs):
        raise ValueError(f"{len(inputs)} inputs ({', '.join(inputs)}) but backward returned "
                         f"{len(grads)} gradients; it must return one per input, in order")
    errors = {}
    for (name, array), analytic in zip(inputs.items(), grads):
        numeric = numerical_gradient(lambda _: float(np.sum(forward(**inputs, **kwargs)[0] * dout)), array)
        errors[name] = relative_error(analytic, numeric)
    return errors
