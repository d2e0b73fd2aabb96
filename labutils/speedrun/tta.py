"""Test-time augmentation: logits averaged over flips and shifts, predictions, accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from labutils.device import model_device
from labutils.train.amp import _autocast


@torch.no_grad()
def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 2) -> torch.Tensor:
    """Logits averaged over test-time augmentations. level 0: the image; 1: the image and its
    mirror; 2: half of level 1 plus half of the mean over two 1-pixel diagonal shifts (each
    with its mirror). x (N, C, H, W) -> (N, K)."""
    if level not in (0, 1, 2):
        raise ValueError(f"tta level must be 0, 1 or 2, got {level}")
    if level == 0:
        return model(x).float()

    def mirrored(v):
        return 0.5 * (model(v).float() + model(v.flip(3)).float())

    logits = mirrored(x)
    if level == 1:
        return logits
    h, w = x.shape[2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = [mirrored(padded[:, :, :h, :w]), mirrored(padded[:, :, 2:, 2:])]
    return 0.5 * logits + 0.25 * (shifted[0] + shifted[1])


@torch.no_grad()
def predict_tta(model: nn.Module, images: torch.Tensor, *, level: int, amp: bool,
                batch_size: int = 2000, channels_last: bool = True) -> torch.Tensor:
    """Float logits (N, K) of ``model`` in eval mode on normalised ``images`` (N, C, H, W), with
    test-time augmentation ``level`` (see ``tta_logits``), in batches.

    The batches are computed on the model's device and the logits returned on ``images``'s.
    """
    model.eval()
    where = model_device(model)
    logits = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(where, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(where, amp):
            logits.append(tta_logits(model, x, level).to(images.device))
    return torch.cat(logits)


def evaluate_tta(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, level: int,
                 amp: bool, batch_size: int = 2000, channels_last: bool = True) -> float:
    """Accuracy of ``model`` on normalised ``images`` with test-time augmentation ``level``."""
    logits = predict_tta(model, images, level=level, amp=amp, batch_size=batch_size,
                         channels_last=channels_last)
    return int((logits.argmax(1) == labels.to(logits.device)).sum()) / len(images)
