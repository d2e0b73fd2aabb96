"""What the held-out-image pilots share: per-image hits with the recipe's test-time augmentation,
their accuracy with a Wilson interval, and paired differences from a reference (imported by
the pilot scripts, which run with benchmarks/ on sys.path)."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import torch

from labutils.speedrun import SpeedrunConfig, SpeedrunResult, predict_tta
from labutils.stats import binomial_ci, compare_paired
from labutils.train import resolve_amp


def held_out_hits(run: SpeedrunResult, cfg: SpeedrunConfig, images: torch.Tensor,
                  labels: torch.Tensor, device: torch.device) -> np.ndarray:
    """1.0 where ``run``'s network, with ``cfg``'s test-time augmentation, is right, else 0.0."""
    logits = predict_tta(run.model, images.to(device), level=cfg.tta_level,
                         amp=resolve_amp(device, cfg.amp), channels_last=cfg.channels_last)
    return (logits.argmax(1).cpu() == labels).float().numpy()


def describe(hits: np.ndarray) -> str:
    low, high = binomial_ci(int(hits.sum()), len(hits))
    return f"validation {hits.mean():.2%} with TTA (95% Wilson {low:.2%} to {high:.2%})"


def print_paired(correct: dict[Hashable, np.ndarray], reference: Hashable,
                 name: Callable[[Hashable], str]) -> None:
    """Every other entry's paired difference from ``reference`` on the same images."""
    for key, hits in correct.items():
        if key != reference:
            d = compare_paired(hits, correct[reference])
            print(f"{name(key)} - {name(reference)} = {d.difference:+.2%} "
                  f"(paired 95% interval over images {d.low:+.2%} to {d.high:+.2%})")
