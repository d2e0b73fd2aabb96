"""A stand-in model for device tests: its parameter lives on a chosen device (e.g. 'meta'), it
records the device of every input it sees, and it answers one-hot logits on the CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DeviceSpy(nn.Module):
    """Answers class ``label`` for every input, or class ``i % num_classes`` for input ``i``."""

    def __init__(self, device, num_classes: int, label: int | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, device=device))
        self.num_classes, self.label = num_classes, label
        self.seen = set()

    def forward(self, x):
        self.seen.add(x.device.type)
        n = len(x)
        classes = torch.full((n,), self.label) if self.label is not None else torch.arange(n)
        return F.one_hot(classes % self.num_classes, self.num_classes).float()


class _Stop(Exception):
    """Raised by the hook of ``first_input_device`` once it has seen the first input."""


def first_input_device(module: nn.Module, call) -> torch.device:
    """The device of the first input that reaches ``module`` while ``call()`` runs (the call is
    stopped there, so it works for modules on the 'meta' device)."""
    seen = []

    def hook(_, inputs):
        seen.append(inputs[0].device)
        raise _Stop

    handle = module.register_forward_pre_hook(hook)
    try:
        call()
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise AssertionError("the module never received an input")
    return seen[0]
