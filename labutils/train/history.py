"""``History``, the per-epoch record that ``fit`` returns, and the type of a metric."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import torch


# A metric takes the model output and the target of one batch and returns the batch mean.
Metric = Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float]


@dataclass
class History:
    """Per-epoch records of a ``fit`` run: one list entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_metrics: dict[str, list[float]] = field(default_factory=dict)
    val_metrics: dict[str, list[float]] = field(default_factory=dict)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 0-based, set when a checkpoint is kept
    amp_dtype: str | None = None  # "bfloat16"/"float16" when mixed precision was used
    channels_last: bool = False
    world_size: int = 1  # processes that trained together (torchrun)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def last(self) -> dict[str, float]:
        """The final epoch's numbers as a flat dict (``train_loss``, ``val_acc``, ...)."""
        if not self.train_loss:
            return {}
        out = {"train_loss": self.train_loss[-1]}
        if self.val_loss:
            out["val_loss"] = self.val_loss[-1]
        out.update({f"train_{k}": v[-1] for k, v in self.train_metrics.items()})
        out.update({f"val_{k}": v[-1] for k, v in self.val_metrics.items()})
        return out

    def to_dict(self) -> dict:
        return asdict(self)
