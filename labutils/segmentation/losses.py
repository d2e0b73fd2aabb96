"""The BCE + Dice loss and the U-Net paper's border weight map."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, dice_weight: float = 1.0,
                  eps: float = 1.0, pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on logits plus ``dice_weight`` x (1 - soft Dice) of the positive
    class over the whole batch. Soft Dice = (2 sum(p t) + eps) / (sum(p) + sum(t) + eps) with
    p = sigmoid(logits); ``eps`` keeps it defined on tiles without positives.
    ``pixel_weights`` (same shape): the cross-entropy becomes mean(w * bce) (e.g. the U-Net
    paper's weight map, ``border_weights``); the Dice term is unweighted. ``target`` holds
    probabilities in [0, 1] (usually a 0/1 mask), ``ValueError`` otherwise or for shapes."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    if pixel_weights is not None and pixel_weights.shape != target.shape:
        raise ValueError(f"pixel_weights {tuple(pixel_weights.shape)} and target "
                         f"{tuple(target.shape)} differ")
    target = target.float()
    if target.numel() and not (target.min() >= 0 and target.max() <= 1):
        raise ValueError(f"target must lie in [0, 1] (a 0/1 mask), got values in "
                         f"[{float(target.min()):.4g}, {float(target.max()):.4g}]")
    bce = F.binary_cross_entropy_with_logits(
        logits.float(), target, weight=None if pixel_weights is None else pixel_weights.float())
    p = torch.sigmoid(logits.float())
    dice = (2 * (p * target).sum() + eps) / (p.sum() + target.sum() + eps)
    return bce + dice_weight * (1 - dice)


def border_weights(membrane, *, w0: float = 10.0, sigma: float = 5.0,
                   reach: float = 4.0) -> np.ndarray:
    """The U-Net paper's separation-border weights for a binary membrane mask (H, W):
    1 everywhere, plus ``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on membrane pixels, where d1
    and d2 are the distances to the nearest and the second-nearest cell (connected regions of
    non-membrane, 4-connectivity). Thin membranes between two close cells get the largest
    weights. (The paper also adds a class-balancing term; here the Dice term of
    ``bce_dice_loss`` deals with the imbalance.) Distances beyond ``reach * sigma`` from a cell
    are not computed: the term they would add is below ``w0 * exp(-reach**2 / 2)``.
    ``membrane`` must be boolean or exactly 0/1 (array or tensor); ``sigma`` and ``reach`` > 0,
    ``w0`` >= 0; ``ValueError`` otherwise. Returns float64 (H, W)."""
    from scipy import ndimage
    from skimage.measure import label

    from labutils.segmentation.scores import _as_mask

    membrane = _as_mask(membrane, "membrane")
    if membrane.ndim != 2:
        raise ValueError(f"membrane must be a 2-D mask, got shape {membrane.shape}")
    if not (sigma > 0 and reach > 0 and w0 >= 0):
        raise ValueError(f"need sigma > 0, reach > 0 and w0 >= 0, got {sigma}, {reach}, {w0}")
    cells = label(~membrane, connectivity=1)
    d1 = np.full(membrane.shape, np.inf)
    d2 = np.full(membrane.shape, np.inf)
    margin = int(np.ceil(reach * sigma))
    for k, box in enumerate(ndimage.find_objects(cells), start=1):
        if box is None:
            continue
        window = tuple(slice(max(b.start - margin, 0), b.stop + margin) for b in box)
        d = ndimage.distance_transform_edt(cells[window] != k)   # distance to cell k
        a1, a2 = d1[window], d2[window]                            # views: updated in place
        closer = d < a1
        a2[...] = np.where(closer, a1, np.minimum(a2, d))
        a1[...] = np.where(closer, d, a1)
    weights = np.ones(membrane.shape)
    both = membrane & np.isfinite(d2)
    weights[both] += w0 * np.exp(-(d1[both] + d2[both]) ** 2 / (2 * sigma ** 2))
    return weights


def border_weighted_loss(*, w0: float = 10.0, sigma: float = 5.0, dice_weight: float = 1.0):
    """``bce_dice_loss`` with the cross-entropy weighted by ``border_weights`` of each target
    mask (N, 1, H, W), computed on the fly: the weights follow the augmented tiles."""

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        masks = target.detach().float().cpu().numpy()[:, 0] > 0.5
        w = np.stack([border_weights(m, w0=w0, sigma=sigma) for m in masks])[:, None]
        return bce_dice_loss(logits, target, dice_weight=dice_weight,
                             pixel_weights=torch.from_numpy(w).float().to(logits.device))

    return loss
