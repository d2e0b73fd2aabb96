"""Metrics for the training loop and for evaluating a trained classifier."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn

from labutils.device import model_device


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose arg-max class equals the target. logits: (N, K), targets: (N,)."""
    if logits.ndim != 2 or targets.ndim != 1 or len(logits) != len(targets):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    return (logits.argmax(dim=1) == targets).float().mean()


@torch.inference_mode()
def predict(model: nn.Module, loader: Iterable, device: torch.device | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets (N,), predicted classes (N,) and class probabilities (N, K) over ``loader``.

    The batches are computed on the model's device (``device``, if given, must be that one);
    the results come back as NumPy arrays.
    """
    where = model_device(model)
    if device is not None and (torch.device(device).type != where.type
                               or torch.device(device).index not in (None, where.index)):
        raise ValueError(f"the model is on {where} but device={device}; move the model there "
                         f"first (model.to(device)) or leave device out")
    model.eval()
    targets, probs = [], []
    for inputs, y in loader:
        logits = model(inputs.to(where))
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        targets.append(y.cpu())
    if not probs:
        raise ValueError("the loader yielded no batches: check that its dataset is not empty "
                         "(and that drop_last does not drop the only batch)")
    p = torch.cat(probs).numpy()
    return torch.cat(targets).numpy(), p.argmax(axis=1), p


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy within each true class (recall per class), shape (num_classes,).

    Labels outside [0, num_classes) are an error, not silently left out.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"expected y_true and y_pred of the same shape (N,), got {y_true.shape} "
                         f"and {y_pred.shape}")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        outside = labels[(labels < 0) | (labels >= num_classes)]
        if outside.size:
            raise ValueError(f"{name} must hold class indices in [0, {num_classes}), found "
                             f"{outside[0]}; is num_classes right?")
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        members = y_true == c
        if members.any():
            out[c] = (y_pred[members] == c).mean()
    return out


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def calibration_bins(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability-diagram data: per confidence bin, the mean confidence, the accuracy and the
    number of samples (bins of equal width on (0, 1]; empty bins give NaN).

    probs: class probabilities (N, K); targets: class indices (N,).
    """
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    if probs.ndim != 2 or targets.shape != (len(probs),):
        raise ValueError(f"expected probs (N, K) and targets (N,), got {probs.shape} and "
                         f"{targets.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    # bin b holds confidences in (b/n, (b+1)/n]
    which = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        mean_conf = np.bincount(which, confidence, n_bins) / count
        acc = np.bincount(which, correct.astype(float), n_bins) / count
    return mean_conf, acc, count


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, n_bins: int = 15) -> float:
    """ECE (Guo et al., 2017): the sample-weighted mean of |accuracy - confidence| over bins."""
    conf, acc, count = calibration_bins(probs, targets, n_bins)
    used = count > 0
    return float(np.sum(count[used] * np.abs(acc[used] - conf[used])) / count.sum())
