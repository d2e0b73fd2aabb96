"""Multi-class segmentation: a canvas data set of real digits, confusion-based scores (per-class
IoU, mean IoU) and the Oxford-IIIT Pet trimaps as class-index masks.

Masks here are class indices (H, W) int64: 0 is the background, 1 ... K-1 the other classes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

PET_CLASSES = ("background", "pet", "border")


def digit_canvases(digits, labels, *, n: int, size: int = 64, per_canvas: tuple[int, int] = (2, 4),
                   threshold: float = 0.5, generator: np.random.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` canvases of ``size`` x ``size`` pixels, each with ``per_canvas[0]`` to
    ``per_canvas[1]`` digits (inclusive) drawn at random from ``digits`` and pasted at random
    positions; where digits overlap the image keeps the brighter pixel and the mask the later digit.

    Args:
        digits: (M, h, w) grey digits, uint8 (0-255) or float in [0, 1].
        labels: (M,) digit classes 0-9; the mask's class is ``label + 1`` where the pasted
            digit's intensity is above ``threshold`` (0 = background).
        generator: every random choice comes from it (``np.random.default_rng(seed)``).

    Returns:
        images (n, 1, size, size) float32 in [0, 1] and masks (n, size, size) int64 in 0-10.
    """
    digits = np.asarray(digits)
    labels = np.asarray(labels)
    if digits.ndim != 3 or labels.shape != (len(digits),) or len(digits) == 0:
        raise ValueError(f"expected digits (M, h, w) and labels (M,) with M >= 1, got "
                         f"{digits.shape} and {labels.shape}")
    digits = digits.astype(np.float32) / 255 if digits.dtype == np.uint8 else \
        digits.astype(np.float32)
    h, w = digits.shape[1:]
    low, high = per_canvas
    if not 1 <= low <= high or size < max(h, w) or n < 0:
        raise ValueError(f"need 1 <= per_canvas[0] <= per_canvas[1], size >= the digit size "
                         f"{(h, w)} and n >= 0; got {per_canvas}, {size}, {n}")
    images = np.zeros((n, 1, size, size), np.float32)
    masks = np.zeros((n, size, size), np.int64)
    for k in range(n):
        for j in generator.choice(len(digits), size=generator.integers(low, high + 1)):
            top, left = generator.integers(0, size - h + 1), generator.integers(0, size - w + 1)
            box = (slice(top, top + h), slice(left, left + w))
            images[k, 0][box] = np.maximum(images[k, 0][box], digits[j])
            masks[k][box][digits[j] > threshold] = int(labels[j]) + 1
    return torch.from_numpy(images), torch.from_numpy(masks)


def confusion(pred, target, num_classes: int) -> np.ndarray:
    """(K, K) pixel counts: row = true class, column = predicted class (scikit-learn's layout).
    ``pred`` and ``target`` are class-index arrays or tensors of the same shape."""
    pred, target = _as_indices(pred), _as_indices(target)
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    for name, a in (("pred", pred), ("target", target)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} holds classes in [{a.min()}, {a.max()}], outside "
                             f"0..{num_classes - 1}")
    counts = np.bincount(target.ravel() * num_classes + pred.ravel(),
                         minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """IoU of each class from a confusion matrix: TP / (TP + FP + FN); NaN for a class that is
    neither present nor predicted."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(conf: np.ndarray) -> float:
    """Mean of the per-class IoUs over the classes that occur (present or predicted)."""
    return float(np.nanmean(per_class_iou(conf)))


def trimap_to_classes(trimap) -> torch.Tensor:
    """An Oxford-IIIT Pet trimap (1 = pet, 2 = background, 3 = border; PIL image, array or
    tensor, (H, W)) as class indices (H, W) int64 in ``PET_CLASSES`` order: 0 background,
    1 pet, 2 border."""
    t = np.asarray(trimap)
    if t.ndim != 2:
        raise ValueError(f"expected a 2-D trimap, got shape {t.shape}")
    if t.size and not np.isin(t, (1, 2, 3)).all():
        raise ValueError(f"a trimap holds 1 (pet), 2 (background) and 3 (border), got values "
                         f"{np.unique(t)[:10].tolist()}")
    lookup = np.array([0, 1, 0, 2], np.int64)   # index = trimap value
    return torch.from_numpy(lookup[t.astype(np.int64)])


class PetSegmentation(Dataset):
    """(image, mask) pairs of an ``OxfordIIITPet(target_types="segmentation")``-like data set
    (items (PIL RGB image, PIL trimap)), resized to ``size`` x ``size``: image (3, size, size)
    float32 in [0, 1] (bilinear), mask (size, size) int64 class indices (nearest neighbour)."""

    def __init__(self, base: Dataset, size: int = 128, indices=None,
                 augment: Callable | None = None):
        self.base, self.size, self.augment = base, size, augment
        self.indices = list(range(len(base))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        image, trimap = self.base[self.indices[i]]
        image = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
        trimap = trimap.resize((self.size, self.size), Image.NEAREST)
        x = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)
        y = trimap_to_classes(trimap)
        if self.augment is not None:
            x, y = self.augment(x, y)
        return x.contiguous(), y


def _as_indices(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.dtype.kind not in "iub":
        raise ValueError(f"expected integer class indices, got dtype {x.dtype}; take "
                         f"logits.argmax(1) first")
    return x.astype(np.int64)
