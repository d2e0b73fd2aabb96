"""Metrics for the training loop and for evaluating a trained classifier."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import nn


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of samples whose arg-max class equals the target. logits: (N, K), targets: (N,)."""
    if logits.ndim != 2 or targets.ndim != 1 or len(logits) != len(targets):
        raise ValueError(f"expected logits (N, K) and targets (N,), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    return (logits.argmax(dim=1) == targets).float().mean()


@torch.inference_mode()
def predict(model: nn.Module, loader: Iterable, device: torch.device
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets (N,), predicted classes (N,) and class probabilities (N, K) over ``loader``."""
    model.eval()
    targets, probs = [], []
    for inputs, y in loader:
        logits = model(inputs.to(device))
        probs.append(torch.softmax(logits.float(), dim=1).cpu())
        targets.append(y.cpu())
    p = torch.cat(probs).numpy()
    return torch.cat(targets).numpy(), p.argmax(axis=1), p


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy within each true class (recall per class), shape (num_classes,)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        members = y_true == c
        if members.any():
            out[c] = (y_pred[members] == c).mean()
    return out


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
