"""Cells from membrane probabilities by watershed, and thresholds chosen on validation."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from labutils.segmentation.scores import cell_rand_error


def watershed_cells(prob_membrane, threshold: float = 0.5) -> np.ndarray:
    """A cell labelling without membrane pixels from a membrane probability map (H, W): the
    4-connected regions where the probability is below ``threshold`` are the seeds, and a
    watershed on the probability floods the membrane pixels from them, so each membrane pixel
    joins the seed that reaches it over the lowest ridge. A thick predicted membrane then costs
    nothing; a gap in one still merges two cells. Labels 1, 2, ...; one cell if no pixel is
    below ``threshold``. ``ValueError`` for a map that is not 2-D or not in [0, 1] (logits),
    or a threshold outside (0, 1)."""
    from skimage.measure import label
    from skimage.segmentation import watershed

    prob = np.asarray(prob_membrane, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"expected one (H, W) probability map, got shape {prob.shape}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    if prob.size and not (prob.min() >= 0 and prob.max() <= 1):
        raise ValueError(f"expected membrane probabilities in [0, 1], got values in "
                         f"[{prob.min():.4g}, {prob.max():.4g}] (NaN included); pass "
                         f"torch.sigmoid(logits), not the logits")
    seeds = label(prob < threshold, connectivity=1)
    if seeds.max() == 0:
        return np.ones(prob.shape, np.int64)
    return watershed(prob, seeds).astype(np.int64)


def watershed_rand_error(probs, targets, threshold: float) -> float:
    """Mean over slices of ``cell_rand_error(watershed_cells(prob, threshold), target)``:
    ``probs`` and ``targets`` are stacks of membrane probability maps and true membrane masks,
    (N, H, W) or (N, 1, H, W), arrays or tensors."""
    probs, targets = _stack_2d(probs), _stack_2d(targets)
    if probs.shape != targets.shape:
        raise ValueError(f"probs {probs.shape} and targets {targets.shape} differ in shape")
    return float(np.mean([cell_rand_error(watershed_cells(p, threshold), t)
                          for p, t in zip(probs, targets)]))


def choose_thresholds(probs, targets, *, watershed_thresholds: Iterable[float],
                      pixel_thresholds: Iterable[float]
                      ) -> tuple[float, float, dict[float, float], dict[float, float]]:
    """Two thresholds for membrane probability maps, chosen on slices with known labels:
    the watershed seed threshold with the lowest mean ``watershed_rand_error`` and the
    threshold with the lowest pixel error (share of wrong pixels when probability > t is called
    membrane). ``probs``, ``targets``: (N, H, W) or (N, 1, H, W) stacks, arrays or tensors.
    Returns (watershed threshold, pixel threshold, Rand error by watershed threshold, pixel
    error by threshold); ties go to the smaller threshold. Pass training (or validation)
    slices: thresholds chosen on the test slices make their scores optimistic."""
    # float64: the comparison with a threshold does not depend on the caller's float type
    probs, targets = _stack_2d(probs).astype(np.float64), _stack_2d(targets) > 0.5
    if probs.shape != targets.shape:
        raise ValueError(f"probs {probs.shape} and targets {targets.shape} differ in shape")
    watershed_thresholds, pixel_thresholds = tuple(watershed_thresholds), tuple(pixel_thresholds)
    if not watershed_thresholds or not pixel_thresholds:
        raise ValueError("need at least one watershed and one pixel threshold")
    rand = {float(t): watershed_rand_error(probs, targets, float(t))
            for t in sorted(watershed_thresholds)}
    pixel = {float(t): float(np.mean((probs > t) != targets)) for t in sorted(pixel_thresholds)}
    return min(rand, key=rand.get), min(pixel, key=pixel.get), rand, pixel


def _stack_2d(x) -> np.ndarray:
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) or (N, 1, H, W), got shape {x.shape}")
    return x
