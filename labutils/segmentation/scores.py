"""Scores of a binary mask: Dice, IoU, pixel error and the adapted Rand error."""

from __future__ import annotations

import numpy as np


# ---------------------------------------------------------------------------------------------
# Scores


def _as_mask(mask, name: str) -> np.ndarray:
    """A boolean array from a boolean mask or one holding only 0 and 1 (arrays or tensors)."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if not (np.issubdtype(mask.dtype, np.number) and np.isin(mask, (0, 1)).all()):
        found = np.unique(mask[~np.isin(mask, (0, 1))])[:5] if mask.dtype != object else "?"
        raise ValueError(f"{name} must be a boolean or exactly 0/1 mask, got {mask.dtype} with "
                         f"values such as {found}; threshold it first (e.g. probs > 0.5, or "
                         f"mask > 127 for 0-255 images)")
    return mask.astype(bool)


def _binary(pred, target) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_mask(pred, "pred"), _as_mask(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    return pred, target


def binary_scores(pred, target) -> dict[str, float]:
    """Pixel error, Dice (F1) and IoU (Jaccard) of the positive class of two binary masks of
    the same shape (boolean or exactly 0/1; arrays or tensors). Dice and IoU are 1 when neither
    mask has a positive pixel. ``ValueError`` for other values (threshold first) or shapes."""
    pred, target = _binary(pred, target)
    tp = np.sum(pred & target)
    fp, fn = np.sum(pred & ~target), np.sum(~pred & target)
    denom_dice, denom_iou = 2 * tp + fp + fn, tp + fp + fn
    return {"pixel error": float(np.mean(pred != target)),
            "dice": float(2 * tp / denom_dice) if denom_dice else 1.0,
            "iou": float(tp / denom_iou) if denom_iou else 1.0}


def rand_error(pred_membrane, target_membrane, *,
               predicted_membrane: str = "one segment") -> float:
    """The challenge's adapted Rand error of a membrane map against the true one: both are
    turned into cell labellings (connected regions of non-membrane, 4-connectivity) and compared
    with ``skimage.metrics.adapted_rand_error`` (1 - F-score of pixel pairs), ignoring the true
    membrane pixels. A predicted membrane pixel belongs to no cell: ``"singletons"`` (the
    convention of the ISBI challenge's foreground-restricted Rand score in Fiji) makes each one
    a segment of its own; ``"one segment"`` (default, what chapter 8's committed outputs used)
    lumps them all into one segment, which is what passing the labelling with 0 on membranes
    straight to scikit-image does. Both maps: (H, W), boolean or exactly 0/1, else
    ``ValueError``."""
    from skimage.measure import label

    if predicted_membrane not in ("singletons", "one segment"):
        raise ValueError(f"predicted_membrane must be 'singletons' or 'one segment', "
                         f"got {predicted_membrane!r}")
    pred, target = _binary(pred_membrane, target_membrane)
    cells_pred = label(~pred, connectivity=1).astype(np.int64)
    if predicted_membrane == "singletons":
        cells_pred[pred] = cells_pred.max() + 1 + np.arange(int(pred.sum()))
    return cell_rand_error(cells_pred, target)


def cell_rand_error(cells, target_membrane) -> float:
    """The adapted Rand error of a cell labelling (an integer label per pixel, e.g. from
    ``watershed_cells``; equal labels = same cell) against the true membrane map: the true cells
    are the 4-connected regions of non-membrane, true membrane pixels are ignored, and every
    value of ``cells`` (0 included) is a segment. ``skimage.metrics.adapted_rand_error``.
    ``target_membrane`` must be boolean or exactly 0/1 (``ValueError`` otherwise)."""
    from skimage.measure import label
    from skimage.metrics import adapted_rand_error

    cells, target = np.asarray(cells), _as_mask(target_membrane, "target_membrane")
    if not np.issubdtype(cells.dtype, np.integer) and not np.array_equal(cells, np.round(cells)):
        raise ValueError(f"cells must be integer labels, got {cells.dtype} with fractions")
    if cells.shape != target.shape:
        raise ValueError(f"cells {cells.shape} and target {target.shape} differ in shape")
    cells_true = label(~target, connectivity=1)   # 0 on membranes: ignored
    # shifted by one so that a label 0 in ``cells`` is a segment like any other
    error, _, _ = adapted_rand_error(cells_true, cells.astype(np.int64) + 1, ignore_labels=(0,))
    return float(error)
