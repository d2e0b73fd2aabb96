"""One training loop for classification, regression (denoising) and segmentation.

``train_one_epoch`` and ``evaluate`` are plain functions (as in torchvision's reference scripts);
``fit`` runs them for a number of epochs and returns a ``History`` that the plotting helpers take.
Losses and metrics are averaged over samples (weighted by batch size), never over batches.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

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


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _progress(iterable: Iterable, enabled: bool, desc: str):
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, else text (logs, CI)."""
    if not enabled or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true"):
        return iterable
    try:
        import ipywidgets  # noqa: F401  (without it tqdm.auto warns and falls back anyway)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


class _Meter:
    """Sums of sample-weighted values."""

    def __init__(self, names: Iterable[str]):
        self.totals = {name: 0.0 for name in names}
        self.count = 0

    def add(self, n: int, values: Mapping[str, torch.Tensor | float]) -> None:
        self.count += n
        for name, value in values.items():
            self.totals[name] += float(value) * n

    def means(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("the loader yielded no samples")
        return {name: total / self.count for name, total in self.totals.items()}


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device, *,
                    metrics: Mapping[str, Metric] | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    amp: bool = False, scaler: torch.amp.GradScaler | None = None,
                    progress: bool = False) -> dict[str, float]:
    """Train for one pass over ``loader``; return the mean ``loss`` and metrics over samples.

    ``scheduler``, if given, is stepped after every batch (e.g. OneCycleLR).
    """
    metrics = metrics or {}
    model.train()
    meter = _Meter(["loss", *metrics])
    for inputs, targets in _progress(loader, progress, "train"):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device, amp):
            outputs = model(inputs)
            loss = loss_fn(outputs, targets)
        loss_value = loss.item()  # the one host sync per batch
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the loss became {loss_value}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            values = {"loss": loss_value}
            values.update({name: fn(outputs.detach(), targets) for name, fn in metrics.items()})
        meter.add(len(targets), values)
    return meter.means()


@torch.inference_mode()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: Callable, device: torch.device, *,
             metrics: Mapping[str, Metric] | None = None, amp: bool = False,
             progress: bool = False) -> dict[str, float]:
    """Mean ``loss`` and metrics of ``model`` over ``loader``, in eval mode, without gradients."""
    metrics = metrics or {}
    model.eval()
    meter = _Meter(["loss", *metrics])
    for inputs, targets in _progress(loader, progress, "eval"):
        inputs = inputs.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device, amp):
            outputs = model(inputs)
            values = {"loss": loss_fn(outputs, targets)}
        values.update({name: fn(outputs.float(), targets) for name, fn in metrics.items()})
        meter.add(len(targets), values)
    return meter.means()


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None,
        loss_fn: Callable, optimizer: torch.optim.Optimizer, *, epochs: int,
        device: torch.device, metrics: Mapping[str, Metric] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        step_scheduler_every_batch: bool = False, amp: bool | None = None,
        checkpoint: str | Path | None = None, monitor: str = "val_loss",
        on_epoch_end: Callable[[int, History], None] | None = None,
        progress: bool = True, verbose: bool = True) -> History:
    """Train ``model`` for ``epochs`` epochs and return its ``History``.

    Args:
        scheduler: stepped once per epoch, or after every batch with
            ``step_scheduler_every_batch=True``.
        amp: mixed precision (bfloat16, or float16 with loss scaling); default: on for CUDA only.
        checkpoint: if given, the weights with the best ``monitor`` value (``val_loss`` is
            minimised, anything else such as ``val_acc`` maximised) are saved there, and
            ``History.best_epoch`` records when.
        on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch.
        verbose: print one summary line per epoch.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if checkpoint is not None and val_loader is None and monitor.startswith("val_"):
        raise ValueError(f"monitor={monitor!r} needs a val_loader")
    amp = device.type == "cuda" if amp is None else amp
    if amp and device.type != "cuda":
        raise ValueError("mixed precision (amp=True) is only supported on CUDA here")
    use_scaler = amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    history = History()
    best = math.inf if monitor.endswith("loss") else -math.inf
    for epoch in range(epochs):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train = train_one_epoch(model, train_loader, loss_fn, optimizer, device, metrics=metrics,
                                scheduler=scheduler if step_scheduler_every_batch else None,
                                amp=amp, scaler=scaler, progress=progress)
        if scheduler is not None and not step_scheduler_every_batch:
            scheduler.step()
        history.train_loss.append(train.pop("loss"))
        for name, value in train.items():
            history.train_metrics.setdefault(name, []).append(value)
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device, metrics=metrics, amp=amp,
                           progress=progress)
            history.val_loss.append(val.pop("loss"))
            for name, value in val.items():
                history.val_metrics.setdefault(name, []).append(value)
        history.lr.append(lr)
        history.seconds.append(time.perf_counter() - start)
        if checkpoint is not None:
            value = history.last()[monitor]
            if (value < best) if monitor.endswith("loss") else (value > best):
                from labutils.checkpoint import save_checkpoint

                best, history.best_epoch = value, epoch
                save_checkpoint(model, checkpoint, metrics={monitor: value, "epoch": epoch + 1})
        if verbose:
            numbers = "  ".join(f"{k} {v:.4f}" for k, v in history.last().items())
            print(f"epoch {epoch + 1:>3}/{epochs}  {numbers}  ({history.seconds[-1]:.1f}s)")
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
    return history
