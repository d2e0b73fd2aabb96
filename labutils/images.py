"""Real photographs that ship with scikit-image, as tensors (no download needed)."""

from __future__ import annotations

import numpy as np
import torch

# scikit-image's bundled images that need no network access.
PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "coins", "moon", "brick", "grass",
          "gravel", "text", "rocket", "page", "clock")


def load_photo(name: str, *, grey: bool = False, size: int | None = None) -> torch.Tensor:
    """A scikit-image sample photo as float32 (C, H, W) in [0, 1]; C is 1 or 3.

    ``grey=True`` converts colour to luminance; ``size`` resizes the shorter side (antialiased).
    """
    from skimage import color, data, transform

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {PHOTOS}")
    if size is not None and (not isinstance(size, (int, np.integer)) or isinstance(size, bool)
                             or size < 1):
        raise ValueError(f"size must be a positive int (pixels of the shorter side), got {size!r}")
    image = getattr(data, name)()
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255
    image = image.astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if grey and image.ndim == 3:
        image = color.rgb2gray(image).astype(np.float32)
    if size is not None:
        h, w = image.shape[:2]
        scale = size / min(h, w)
        shape = (round(h * scale), round(w * scale)) + image.shape[2:]
        image = transform.resize(image, shape, anti_aliasing=True).astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
