"""The training run: alternating flips, ``train_speedrun``, epochs that fit a budget."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from labutils.augment import random_translate
from labutils.train.amp import (_autocast, _cudnn_benchmark, backward_step, dtype_name,
                                grad_scaler, resolve_amp)
from labutils.speedrun.config import SpeedrunConfig
from labutils.speedrun.net import SpeedrunNet, whitening_filters
from labutils.speedrun.optim import Lookahead, lr_factor, make_optimizer
from labutils.speedrun.tta import evaluate_tta


def flip_plan(n: int, generator: torch.Generator, epoch: int, alternating: bool) -> torch.Tensor:
    """Which of ``n`` images to mirror in ``epoch`` (bool (n,)).

    Alternating: a random half in epoch 0, then every image flips state each epoch, so each one
    is seen both ways in every two epochs. Otherwise: a fresh coin per image and epoch. The
    alternating plan needs the same ``generator`` state at every epoch (pass a fresh copy).
    """
    if not alternating:
        return torch.rand(n, generator=generator) < 0.5
    base = torch.rand(n, generator=generator) < 0.5
    return base ^ bool(epoch % 2)


@dataclass
class SpeedrunResult:
    """What one run measured: accuracies, training seconds and the per-epoch record."""

    test_acc: float                # with the configured test-time augmentation
    test_acc_plain: float          # without it
    train_seconds: float           # training only (evaluation excluded)
    epoch_seconds: list[float] = field(default_factory=list)   # cumulative training time
    epoch_acc: list[float] = field(default_factory=list)       # plain test acc after each epoch
    model: nn.Module | None = field(default=None, repr=False)  # the trained network
    amp_dtype: str | None = None   # "bfloat16"/"float16" when mixed precision was used

    def time_to(self, target: float) -> float | None:
        """Training seconds until the per-epoch test accuracy first reached ``target``."""
        return next((s for s, a in zip(self.epoch_seconds, self.epoch_acc) if a >= target), None)


def normalise(images: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float, per-channel standardised."""
    m = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images.float() / 255 - m) / s


def train_speedrun(cfg: SpeedrunConfig, train: tuple[torch.Tensor, torch.Tensor],
                   test: tuple[torch.Tensor, torch.Tensor], *, device: torch.device, seed: int,
                   eval_each_epoch: bool = True, verbose: bool = False,
                   model: SpeedrunNet | None = None,
                   num_classes: int | None = None) -> SpeedrunResult:
    """Train a ``SpeedrunNet`` with the recipe ``cfg`` and measure it on ``test``.

    ``train`` and ``test`` are (normalised float images (N, 3, 32, 32), int64 labels).
    ``model``: start from this network instead (fine-tuning; its whitening filters are kept, and
    it is trained in place); by default a fresh one with ``num_classes`` outputs (default: the
    largest training label + 1; pass it when a subset may lack the last class). Training time
    excludes the per-epoch test evaluation. On CUDA, autocast runs in bfloat16 from compute
    capability 8.0 on, else in float16 with loss scaling (``labutils.train.amp``).
    """
    if not cfg.epochs > 0:
        raise ValueError(f"cfg.epochs must be positive, got {cfg.epochs}")
    if len(train[0]) < cfg.batch_size:
        raise ValueError(f"{len(train[0])} training images make no batch of {cfg.batch_size}: "
                         f"no step would be taken; lower cfg.batch_size or train on more images")
    with _cudnn_benchmark(device):
        return _train(cfg, train, test, device=device, seed=seed,
                      eval_each_epoch=eval_each_epoch, verbose=verbose, model=model,
                      num_classes=num_classes)


def _train(cfg, train, test, *, device, seed, eval_each_epoch, verbose, model,
           num_classes) -> SpeedrunResult:
    """``train_speedrun`` after its checks, inside cuDNN autotuning (on CUDA)."""
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_test, y_test = x_test.to(device), y_test.to(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    amp = resolve_amp(device, cfg.amp)
    scaler = grad_scaler(device, amp)  # float16 GPUs only
    if model is None:
        if num_classes is None:
            num_classes = int(y_train.max()) + 1
        model = SpeedrunNet(cfg.widths, num_classes=num_classes,
                            frozen_bn_scale=cfg.frozen_bn_scale).to(device)
        if cfg.whiten:
            # A random 5,000 images (the CIFAR-10 JPEG copy is stored class by class).
            sample = torch.randperm(len(x_train), generator=gen)[:5000].to(device)
            model.whiten.weight.data.copy_(whitening_filters(x_train[sample].cpu()).to(device))
    else:
        if num_classes is not None and num_classes != model.head.out_features:
            raise ValueError(f"num_classes={num_classes} but the given model has "
                             f"{model.head.out_features} outputs")
        model = model.to(device)
    if cfg.whiten:
        model.whiten.weight.requires_grad_(False)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    steps_per_epoch = len(x_train) // cfg.batch_size
    total = math.ceil(cfg.epochs * steps_per_epoch)
    lookahead = Lookahead(model) if cfg.lookahead else None
    flip_seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    result = SpeedrunResult(0.0, 0.0, 0.0, amp_dtype=dtype_name(device, amp))
    step, elapsed = 0, 0.0
    for epoch in range(math.ceil(cfg.epochs)):
        start = time.perf_counter()
        model.train()
        if cfg.whiten:
            model.whiten.bias.requires_grad_(epoch < cfg.whiten_bias_epochs)
        flip_gen = torch.Generator().manual_seed(flip_seed if cfg.alternating_flip
                                                 else flip_seed + epoch)
        flips = flip_plan(len(x_train), flip_gen, epoch, cfg.alternating_flip).to(device)
        order = torch.randperm(len(x_train), generator=gen).to(device)
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = x_train[idx]
            x = torch.where(flips[idx].view(-1, 1, 1, 1), x.flip(3), x)
            if cfg.translate:
                x = random_translate(x, gen, pad=cfg.translate)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            for g in optimizer.param_groups:
                g["lr"] = g["initial_lr"] * lr_factor(step, total)
            with _autocast(device, amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y_train[idx], reduction="sum",
                                   label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            backward_step(loss, optimizer, scaler)
            step += 1
            if lookahead is not None and step % 5 == 0:
                lookahead.update(model, decay=0.95 ** 5 * (step / total) ** 3)
        if lookahead is not None and step >= total:
            lookahead.update(model, decay=1.0)  # end on the slow weights
        elapsed += time.perf_counter() - start
        if eval_each_epoch or step >= total:
            acc = evaluate_tta(model, x_test, y_test, level=0, amp=amp,
                               channels_last=cfg.channels_last)
            result.epoch_seconds.append(elapsed)
            result.epoch_acc.append(acc)
            if verbose:
                print(f"  epoch {epoch + 1}: {elapsed:.0f} s, test acc {acc:.4f}", flush=True)
        if step >= total:
            break
    result.train_seconds = elapsed
    result.test_acc_plain = result.epoch_acc[-1]
    result.test_acc = evaluate_tta(model, x_test, y_test, level=cfg.tta_level, amp=amp,
                                   channels_last=cfg.channels_last)
    result.model = model
    return result


def epochs_for_budget(cfg: SpeedrunConfig, train: tuple[torch.Tensor, torch.Tensor],
                      minutes: float, *, device: torch.device, probe_epochs: float = 0.5,
                      seed: int = 0) -> float:
    """How many epochs of ``cfg`` on ``train`` fit in ``minutes`` of training on this machine.

    Minutes of training differ between machines (and between CPU hosts of the same cloud), so a
    budget in minutes is turned into epochs by timing a short run of the same recipe on the same
    data and device: ``probe_epochs`` of an epoch (at most one; at least one step). Its first
    steps include warm-up, so the estimate errs on the short side. The result is rounded down to
    a tenth of an epoch; a budget too small for a tenth raises ``ValueError``. The probe's own
    time is not part of the budget: report it separately.
    """
    if minutes <= 0 or probe_epochs <= 0:
        raise ValueError(f"minutes and probe_epochs must be positive, got {minutes}, "
                         f"{probe_epochs}")
    steps_per_epoch = len(train[0]) // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train[0])} images make no batch of {cfg.batch_size}")
    # the probe's end-of-run score is not used: no test-time augmentation, a small check set
    probe = replace(cfg, epochs=min(probe_epochs, 1.0), tta_level=0)
    probe_steps = math.ceil(probe.epochs * steps_per_epoch)   # as train_speedrun counts them
    check = (train[0][:256], train[1][:256])
    run = train_speedrun(probe, train, check, device=device, seed=seed, eval_each_epoch=False)
    seconds_per_epoch = run.train_seconds / probe_steps * steps_per_epoch
    epochs = math.floor(minutes * 60 / seconds_per_epoch * 10) / 10
    if epochs <= 0:
        raise ValueError(f"{minutes} min buy less than a tenth of an epoch here (an epoch takes "
                         f"{seconds_per_epoch:.0f} s)")
    return epochs
