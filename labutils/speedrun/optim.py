"""The optimiser (decoupled decay, a faster bias group), the schedule and lookahead."""

from __future__ import annotations

import torch
from torch import nn

from labutils.speedrun.config import SpeedrunConfig
from labutils.speedrun.net import SpeedrunNet


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
