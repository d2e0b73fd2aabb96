"""The training loop: ``train_one_epoch``, ``evaluate`` and ``fit``."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from labutils import distributed
from labutils.device import model_device
from labutils.train.amp import (_autocast, _cudnn_benchmark, backward_step, dtype_name,
                                grad_scaler, resolve_amp)
from labutils.train.history import History, Metric


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    if channels_last and x.ndim == 4:
        return x.to(device, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device, non_blocking=True)


def _check_model_device(model: nn.Module, device: torch.device) -> None:
    """The batches go to ``device``; a model elsewhere would fail deep inside its forward."""
    where = model_device(model)
    if where.type != device.type or (device.index is not None and where.index != device.index):
        raise ValueError(f"the model is on {where} but device={device}: the batches are moved to "
                         f"device, so move the model there first (model.to(device))")


def has_conv(model: nn.Module) -> bool:
    """True if ``model`` holds 4-D weights (2-D convolutions): where channels_last can help."""
    return any(p.ndim == 4 for p in model.parameters())


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
        """Sample-weighted means; under torchrun, over the samples of all processes."""
        names = list(self.totals)
        count, *totals = distributed.all_reduce_sums([self.count, *self.totals.values()])
        if count == 0:
            raise ValueError("the loader yielded no samples")
        return {name: total / count for name, total in zip(names, totals)}


def train_one_epoch(model: nn.Module, loader: Iterable, loss_fn: Callable,
                    optimizer: torch.optim.Optimizer, device: torch.device, *,
                    metrics: Mapping[str, Metric] | None = None,
                    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                    amp: bool = False, scaler: torch.amp.GradScaler | None = None,
                    channels_last: bool = False, progress: bool = False) -> dict[str, float]:
    """Train for one pass over ``loader``; return the mean ``loss`` and metrics over samples.

    ``scheduler``, if given, is stepped after every batch (e.g. OneCycleLR). With ``amp`` the
    forward pass runs under autocast; the loss and metrics are computed in float32. Where
    autocast runs in float16 (GPUs before compute capability 8.0) the loss is scaled: pass
    ``scaler=grad_scaler(device, amp)`` made once for the whole run (else one is made for this
    epoch and its learned scale is lost at the end).
    """
    metrics = metrics or {}
    _check_model_device(model, device)
    if scaler is None:
        scaler = grad_scaler(device, amp)
    model.train()
    meter = _Meter(["loss", *metrics])
    for inputs, targets in _progress(loader, progress, "train"):
        inputs = _to_device(inputs, device, channels_last)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device, amp):
            outputs = model(inputs)
        outputs = outputs.float()
        loss = loss_fn(outputs, targets)
        loss_value = loss.item()  # the one host sync per batch
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"the loss became {loss_value}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        backward_step(loss, optimizer, scaler)
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
             channels_last: bool = False, progress: bool = False) -> dict[str, float]:
    """Mean ``loss`` and metrics of ``model`` over ``loader``, in eval mode, without gradients.

    Under torchrun every process must call it (the sums are all-reduced).
    """
    metrics = metrics or {}
    _check_model_device(model, device)
    model.eval()
    meter = _Meter(["loss", *metrics])
    for inputs, targets in _progress(loader, progress, "eval"):
        inputs = _to_device(inputs, device, channels_last)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device, amp):
            outputs = model(inputs)
        outputs = outputs.float()
        values = {"loss": loss_fn(outputs, targets)}
        values.update({name: fn(outputs, targets) for name, fn in metrics.items()})
        meter.add(len(targets), values)
    return meter.means()


def monitor_mode(monitor: str, mode: str | None = None) -> str:
    """``"min"`` or ``"max"`` for a monitored quantity: given, or inferred from an unambiguous name
    (``*loss`` is minimised, ``*acc*`` maximised); raises ``ValueError`` otherwise."""
    if mode is not None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        return mode
    if monitor.endswith("loss"):
        return "min"
    if "acc" in monitor:
        return "max"
    raise ValueError(f"cannot tell whether {monitor!r} should be minimised or maximised; "
                     f"pass mode='min' (errors, losses) or mode='max' (accuracies, scores)")


def _check_monitor(monitor: str, metrics: Mapping[str, Metric], has_val: bool) -> None:
    splits = ("train", "val") if has_val else ("train",)
    known = [f"{split}_{name}" for split in splits for name in ("loss", *metrics)]
    if monitor not in known:
        hint = "" if has_val or not monitor.startswith("val_") else " (there is no val_loader)"
        raise ValueError(f"monitor={monitor!r} is not a recorded quantity{hint}; choose one of "
                         f"{known}")


def fit(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None,
        loss_fn: Callable, optimizer: torch.optim.Optimizer, *, epochs: int,
        device: torch.device, metrics: Mapping[str, Metric] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        step_scheduler_every_batch: bool = False, amp: bool | None = None,
        channels_last: bool | None = None,
        checkpoint: str | Path | None = None, monitor: str | None = None,
        mode: str | None = None,
        on_epoch_end: Callable[[int, History], None] | None = None,
        progress: bool = True, verbose: bool = True) -> History:
    """Train ``model`` for ``epochs`` epochs and return its ``History``.

    Args:
        scheduler: stepped once per epoch, or after every batch with
            ``step_scheduler_every_batch=True``.
        amp: mixed precision under autocast: bfloat16, or float16 with loss scaling on GPUs
            before compute capability 8.0 (``amp_dtype``; ``History.amp_dtype`` names it).
            Default: on for CUDA and for CPUs with native bf16 (``resolve_amp``).
        channels_last: store the model and input batches channels-last (NHWC), which makes
            convolutions faster on CPUs and GPUs. Default: on when the model has 2-D convs.
            The model is converted in place.
        checkpoint: if given, the weights with the best ``monitor`` value are saved there, and
            ``History.best_epoch`` records when.
        monitor: ``{train,val}_loss`` or ``{train,val}_<metric>``; default ``val_loss`` (or
            ``train_loss`` without a val_loader). Checked before training starts.
        mode: ``"min"`` or ``"max"`` for ``monitor``; inferred only for ``*loss`` and ``*acc*``.
        on_epoch_end: called as ``on_epoch_end(epoch, history)`` after each epoch (all ranks).
        verbose: print one summary line per epoch.

    Under ``torchrun`` (after ``labutils.distributed.init_distributed()``) the model is wrapped
    in DistributedDataParallel; only rank 0 prints, shows progress and saves the checkpoint.
    On CUDA, cuDNN autotuning (``cudnn.benchmark``) is on while it trains (not in deterministic
    mode), and restored afterwards.
    """
    metrics = dict(metrics or {})
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if monitor is not None and checkpoint is None:
        raise ValueError(f"monitor={monitor!r} has no effect without checkpoint=...; pass a "
                         f"checkpoint path or drop monitor")
    if checkpoint is not None:
        monitor = monitor or ("val_loss" if val_loader is not None else "train_loss")
        _check_monitor(monitor, metrics, val_loader is not None)
        mode = monitor_mode(monitor, mode)
    amp = resolve_amp(device, amp)
    _check_model_device(model, device)
    channels_last = has_conv(model) if channels_last is None else channels_last
    if channels_last:
        model.to(memory_format=torch.channels_last)
    main = distributed.is_main_process()
    net = model
    if distributed.is_distributed():
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
    scaler = grad_scaler(device, amp)  # float16 only; one for the run: it learns the scale
    history = History(amp_dtype=dtype_name(device, amp), channels_last=channels_last,
                      world_size=distributed.world_size())
    with _cudnn_benchmark(device):  # restored afterwards
        best = math.inf if mode == "min" else -math.inf
        for epoch in range(epochs):
            sampler = getattr(train_loader, "sampler", None)
            if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
                sampler.set_epoch(epoch)
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            train = train_one_epoch(net, train_loader, loss_fn, optimizer, device,
                                    metrics=metrics,
                                    scheduler=scheduler if step_scheduler_every_batch else None,
                                    amp=amp, scaler=scaler, channels_last=channels_last,
                                    progress=progress and main)
            if scheduler is not None and not step_scheduler_every_batch:
                scheduler.step()
            history.train_loss.append(train.pop("loss"))
            for name, value in train.items():
                history.train_metrics.setdefault(name, []).append(value)
            if val_loader is not None:
                val = evaluate(model, val_loader, loss_fn, device, metrics=metrics, amp=amp,
                               channels_last=channels_last, progress=progress and main)
                history.val_loss.append(val.pop("loss"))
                for name, value in val.items():
                    history.val_metrics.setdefault(name, []).append(value)
            history.lr.append(lr)
            history.seconds.append(time.perf_counter() - start)
            if checkpoint is not None:
                value = history.last()[monitor]
                if (value < best) if mode == "min" else (value > best):
                    best, history.best_epoch = value, epoch
                    if main:
                        from labutils.checkpoint import save_checkpoint

                        save_checkpoint(model, checkpoint,
                                        metrics={monitor: value, "epoch": epoch + 1})
            if verbose and main:
                numbers = "  ".join(f"{k} {v:.4f}" for k, v in history.last().items())
                print(f"epoch {epoch + 1:>3}/{epochs}  {numbers}  ({history.seconds[-1]:.1f}s)")
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
    return history
