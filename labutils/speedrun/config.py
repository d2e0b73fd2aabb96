"""``SpeedrunConfig``: the recipe's hyper-parameters, with a switch per trick."""

from __future__ import annotations

from dataclasses import dataclass


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
