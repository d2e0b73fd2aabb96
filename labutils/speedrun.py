"""A fast CIFAR-10 recipe in the style of airbench (Jordan, 2024), written for CPU and GPU.

The ingredients, each a switch in ``SpeedrunConfig`` so that chapter 5 can remove them one at a
time: a first layer of fixed 2x2 whitening filters computed from the training patches (only its
bias learns, and only early), batch norm whose scales are frozen at 1, GELU, Nesterov SGD whose
learning rate and weight decay are decoupled (the decay per step does not change when the
learning rate is tuned), a 64x larger learning rate for the batch-norm biases, label smoothing,
alternating flips (every image is seen mirrored in every other epoch, not at random), lookahead
(the weights are pulled toward a slow moving average every 5 steps) and test-time augmentation.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from labutils.augment import random_translate
from labutils.train import _autocast, resolve_amp


@dataclass
class SpeedrunConfig:
    """Hyper-parameters of the recipe (airbench94's values by default)."""

    widths: tuple[int, int, int] = (64, 256, 256)
    epochs: float = 9.9
    batch_size: int = 1024
    lr: float = 11.5              # per "kilostep" (see ``make_optimizer``)
    momentum: float = 0.85
    weight_decay: float = 0.0153
    bias_lr_scale: float = 64.0   # batch-norm biases learn this much faster
    label_smoothing: float = 0.2
    translate: int = 2            # random shifts of up to this many pixels (reflect padding)
    whiten: bool = True           # fixed whitening filters in the first layer (else learned)
    whiten_bias_epochs: float = 3
    frozen_bn_scale: bool = True
    alternating_flip: bool = True  # else a fresh random flip per image and epoch
    lookahead: bool = True
    tta_level: int = 2            # 0: none, 1: mirror, 2: mirror + two 1-pixel shifts
    amp: bool | None = None       # bf16 autocast; default: where it is fast (labutils.train)
    channels_last: bool = True


class ConvGroup(nn.Module):
    """conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU. (N, c_in, H, W) -> (N, c_out, H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int, *, frozen_bn_scale: bool = True):
        super().__init__()
        self.conv1 = _conv(c_in, c_out)
        self.norm1 = _batch_norm(c_out, frozen_bn_scale)
        self.conv2 = _conv(c_out, c_out)
        self.norm2 = _batch_norm(c_out, frozen_bn_scale)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    # The first c_in filters start as identities (Dirac kernels): the group starts near a
    # pass-through of its input, which lets the large learning rates work from step one.
    nn.init.dirac_(conv.weight.data[:min(c_in, c_out)])
    return conv


def _batch_norm(channels: int, frozen_scale: bool) -> nn.BatchNorm2d:
    # momentum 0.4: running statistics follow the last few batches (short runs, big batches).
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=0.4)
    norm.weight.requires_grad_(not frozen_scale)
    return norm


class SpeedrunNet(nn.Module):
    """2x2 whitening conv (3 -> 24 channels, no padding) + GELU, three ``ConvGroup``s,
    3x3 max-pool, a bias-free linear layer and a fixed 1/9 output scale.
    (N, 3, 32, 32) -> logits (N, 10); spatial size 32 -> 31 -> 15 -> 7 -> 3 -> 1."""

    def __init__(self, widths: tuple[int, int, int] = (64, 256, 256), num_classes: int = 10, *,
                 frozen_bn_scale: bool = True):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        nn.init.zeros_(self.whiten.bias)  # as airbench: the whitened patches start unshifted
        groups, c = [], 24
        for w in widths:
            groups.append(ConvGroup(c, w, frozen_bn_scale=frozen_bn_scale))
            c = w
        self.groups = nn.Sequential(*groups)
        self.head = nn.Linear(c, num_classes, bias=False)
        self.scale = 1 / 9

    def forward(self, x):
        x = self.groups(F.gelu(self.whiten(x)))
        x = F.max_pool2d(x, 3).flatten(1)  # (N, widths[-1])
        return self.head(x) * self.scale


@torch.no_grad()
def whitening_filters(images: torch.Tensor, *, size: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """Filters (2 * C*size*size, C, size, size) that whiten the size x size patches of ``images``.

    Every patch (flattened to C*size*size values) is projected on the eigenvectors of the patches'
    second-moment matrix and divided by the square root of the eigenvalue (+ ``eps``); the
    filters come as a +/- pair so that a following ReLU-like nonlinearity keeps both signs.
    images: normalised float (N, C, H, W).
    """
    n, c = images.shape[:2]
    patches = images.double().unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H', W', s, s)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * size * size)
    second_moment = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(second_moment)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps).unsqueeze(1)  # one per row
    filters = filters.reshape(-1, c, size, size)
    return torch.cat([filters, -filters]).float()


def make_optimizer(model: SpeedrunNet, cfg: SpeedrunConfig) -> torch.optim.SGD:
    """Nesterov SGD with two parameter groups (batch-norm biases, everything else).

    The loss is summed over the batch, so the step sizes are scaled by airbench's
    ``1024 * (1 + 1 / (1 - momentum))``; the weight decay is passed as ``decay / lr``, so the
    decay applied per step is ``cfg.weight_decay * batch_size / scale`` times the schedule's
    factor, whatever ``cfg.lr`` is (tuning the rate does not change the decay). Batch-norm
    parameters (biases, and scales when they are not frozen) form the fast group.
    """
    scale = 1024 * (1 + 1 / (1 - cfg.momentum))
    lr = cfg.lr / scale
    decay = cfg.weight_decay * cfg.batch_size / scale
    norm_params = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d)
                   for p in (m.bias, m.weight) if p.requires_grad]
    norm_ids = {id(p) for p in norm_params}
    other = [p for p in model.parameters() if p.requires_grad and id(p) not in norm_ids]
    bias_lr = lr * cfg.bias_lr_scale
    groups = [dict(params=norm_params, lr=bias_lr, weight_decay=decay / bias_lr),
              dict(params=other, lr=lr, weight_decay=decay / lr)]
    for g in groups:
        g["initial_lr"] = g["lr"]
    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True)


def lr_factor(step: int, total: int) -> float:
    """Triangular schedule: 0.2 -> 1 over the first 23% of steps, then down to 0.07."""
    warmup = max(1, int(0.23 * total))
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / max(1, total - warmup)


class Lookahead:
    """A slow copy of every floating-point tensor of the state (weights and BN statistics);
    ``update(model, decay)`` moves it toward the model by ``1 - decay`` and copies it back."""

    def __init__(self, model: nn.Module):
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items()
                     if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for k, v in model.state_dict().items():
            if k in self.slow:
                self.slow[k].lerp_(v, 1 - decay)
                v.copy_(self.slow[k])


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
    test-time augmentation ``level`` (see ``tta_logits``), in batches."""
    model.eval()
    logits = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(x.device, amp):
            logits.append(tta_logits(model, x, level))
    return torch.cat(logits)


def evaluate_tta(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, level: int,
                 amp: bool, batch_size: int = 2000, channels_last: bool = True) -> float:
    """Accuracy of ``model`` on normalised ``images`` with test-time augmentation ``level``."""
    logits = predict_tta(model, images, level=level, amp=amp, batch_size=batch_size,
                         channels_last=channels_last)
    return int((logits.argmax(1) == labels).sum()) / len(images)


@dataclass
class SpeedrunResult:
    """What one run measured: accuracies, training seconds and the per-epoch record."""

    test_acc: float                # with the configured test-time augmentation
    test_acc_plain: float          # without it
    train_seconds: float           # training only (evaluation excluded)
    epoch_seconds: list[float] = field(default_factory=list)   # cumulative training time
    epoch_acc: list[float] = field(default_factory=list)       # plain test acc after each epoch
    model: nn.Module | None = field(default=None, repr=False)  # the trained network

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
    excludes the per-epoch test evaluation.
    """
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_test, y_test = x_test.to(device), y_test.to(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    amp = resolve_amp(device, cfg.amp)
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
    result = SpeedrunResult(0.0, 0.0, 0.0)
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
            loss.backward()
            optimizer.step()
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
