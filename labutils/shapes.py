"""Convolution arithmetic: output sizes and receptive fields (Dumoulin & Visin, 2016).

All sizes are along one spatial axis; apply them to height and width separately.
"""

from __future__ import annotations

import numbers
from typing import Iterable, NamedTuple, Sequence


def _check(**values: int) -> dict[str, int]:
    """Validate sizes (Python or NumPy integers, not bools) and return them as Python ints."""
    out = {}
    for name, value in values.items():
        minimum = 0 if name in ("padding", "output_padding") else 1
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        out[name] = int(value)
    return out


def conv_output_size(n: int, kernel: int, *, stride: int = 1, padding: int = 0,
                     dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling: floor((n + 2p - d(k-1) - 1) / s) + 1.

    ``ceil_mode`` rounds up as ``nn.MaxPool2d(ceil_mode=True)`` does: a last, partial window
    counts if it starts inside the input or its left padding (PyTorch's rule, which also accepts
    a window longer than the padded input, e.g. n=1, k=4, s=2, p=1 gives 1).
    """
    n, kernel, stride, padding, dilation = _check(
        n=n, kernel=kernel, stride=stride, padding=padding, dilation=dilation).values()
    span = n + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # floor division, as PyTorch
    if ceil_mode and (out - 1) * stride >= n + padding:  # last window starts in the right padding
        out -= 1
    if out < 1:
        raise ValueError(f"kernel {kernel} (dilation {dilation}) does not fit an input of "
                         f"{n} with padding {padding}: use a smaller kernel or more padding")
    return out


def conv_transpose_output_size(n: int, kernel: int, *, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution: (n-1)s - 2p + d(k-1) + output_padding + 1."""
    n, kernel, stride, padding, output_padding, dilation = _check(
        n=n, kernel=kernel, stride=stride, padding=padding, output_padding=output_padding,
        dilation=dilation).values()
    if output_padding >= max(stride, dilation):
        raise ValueError(f"output_padding ({output_padding}) must be smaller than stride "
                         f"({stride}) or dilation ({dilation})")
    out = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"the output would have size {out}")
    return out


class Layer(NamedTuple):
    """Kernel, stride, dilation and padding of one layer, for receptive-field arithmetic
    (``receptive_field`` ignores the padding; ``receptive_window`` needs it)."""

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0


class Upsample(NamedTuple):
    """An upsampling by ``factor`` whose every output depends on one input, output ``o`` on
    input ``o // factor``: nearest-neighbour upsampling, or a transposed convolution whose
    kernel equals its stride and has no padding (the U-Net's 2x2, stride 2)."""

    factor: int


class ReceptiveField(NamedTuple):
    size: int   # input pixels that one output unit sees, along one axis
    jump: int   # distance in input pixels between neighbouring output units


def receptive_field(layers: Iterable[Layer | tuple[int, ...]]) -> ReceptiveField:
    """Receptive field of a stack: r <- r + d(k-1) * j and j <- j * s, layer by layer."""
    size, jump = 1, 1
    for layer in layers:
        if isinstance(layer, Upsample):
            raise ValueError("with upsampling the window depends on the output's position: "
                             "use receptive_window")
        kernel, stride, dilation, _ = _check(**Layer(*layer)._asdict()).values()
        size += dilation * (kernel - 1) * jump
        jump *= stride
    return ReceptiveField(size, jump)


def receptive_window(layers: Sequence[Layer | Upsample | tuple[int, ...]],
                     position: int) -> tuple[int, int]:
    """First and last input index that output unit ``position`` of the stack depends on, on
    an unbounded input (indices below 0 or past the end mean padding). Traced backwards, layer
    by layer: a convolution or pooling maps outputs a..b to inputs a s - p .. b s - p + d(k-1),
    an ``Upsample(f)`` to a // f .. b // f. Along a network with branches (a U-Net's skip
    connections) pass the deepest path: its window contains the others'. Where a stack
    downsamples and then upsamples, the window's size depends on the position within the
    pooling grid, so look at a whole period of positions."""
    first, last = position, position
    for layer in reversed(list(layers)):
        if isinstance(layer, Upsample):
            factor = _check(factor=layer.factor)["factor"]
            first, last = first // factor, last // factor
            continue
        kernel, stride, dilation, padding = _check(**Layer(*layer)._asdict()).values()
        first = first * stride - padding
        last = last * stride - padding + dilation * (kernel - 1)
    return first, last
