"""Input checks shared by the NumPy layers: float arrays, the shape of ``dout``; padding."""

from __future__ import annotations

import numpy as np


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
