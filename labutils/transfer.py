"""Transfer learning: a new head on a trained body, freezing, and per-part learning rates.

The same functions work on torchvision's ImageNet models (``pretrained``; needs internet once,
e.g. on Colab) and on the book's own networks trained offline and saved with
``labutils.checkpoint``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from labutils.data import DataMissingError

# torchvision builders and weight enums of the models the source material uses
_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights",
            "squeezenet1_1": "SqueezeNet1_1_Weights"}


class WeightsMissingError(DataMissingError):
    """Pretrained weights are not cached and could not be downloaded."""


class WeightsCorruptError(ValueError):
    """A cached pretrained-weights file exists but cannot be read (e.g. a partial download)."""


def pretrained(name: str, *, weights: str = "DEFAULT") -> nn.Module:
    """A torchvision model with its ImageNet weights (``resnet18``, ``resnet50``, ``squeezenet1_1``).

    torchvision downloads the weights once into the torch hub cache. Offline and not cached, this
    raises ``WeightsMissingError`` saying what to do; it never returns random weights.

    Args:
        weights: a member name of torchvision's weights enum for that model (``"DEFAULT"``,
            ``"IMAGENET1K_V1"``, ...).

    Raises:
        ValueError: an unknown model or weights name (the message lists the valid ones).
        WeightsMissingError: not cached and the download failed.
        WeightsCorruptError: the cached file exists but cannot be loaded (delete it).
    """
    import torchvision

    if name not in _WEIGHTS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(_WEIGHTS)}")
    enum = getattr(torchvision.models, _WEIGHTS[name])
    valid = [w.name for w in enum] + ["DEFAULT"]
    if not isinstance(weights, str) or weights not in valid:
        raise ValueError(f"unknown weights {weights!r} for {name}; expected one of {valid}")
    chosen = getattr(enum, weights)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / chosen.url.rsplit("/", 1)[-1]
    try:
        # torch.hub announces the download with the cache path on stdout: keep it out of
        # notebook outputs (the error below names the folder when it matters)
        with contextlib.redirect_stdout(io.StringIO()):
            return getattr(torchvision.models, name)(weights=chosen)
    except Exception as err:  # no network: URLError, OSError, RuntimeError from the hub
        if cached.is_file():  # present, so the failure is in reading it
            raise WeightsCorruptError(
                f"the cached ImageNet weights of {name} ({chosen}) at {cached} are corrupt or "
                f"incomplete and cannot be loaded ({type(err).__name__}: {err}). Delete that "
                f"file and call pretrained({name!r}) again with internet access to download "
                f"it afresh."
            ) from err
        raise WeightsMissingError(
            f"the ImageNet weights of {name} ({chosen}) are not in the torch hub cache "
            f"({torch.hub.get_dir()}) and downloading them failed ({type(err).__name__}: {err}). "
            f"Run on a machine with internet access (e.g. Colab) once, or copy the file "
            f"{chosen.url.rsplit('/', 1)[-1]} into {torch.hub.get_dir()}/checkpoints/."
        ) from err


def head_of(model: nn.Module) -> tuple[str, nn.Module]:
    """The attribute name and module of the classification head: ``fc`` (ResNets),
    ``classifier`` (SqueezeNet, VGG, the book's models) or ``head`` (the CIFAR ResNets)."""
    for name in ("fc", "head", "classifier"):
        if isinstance(getattr(model, name, None), nn.Module):
            return name, getattr(model, name)
    raise ValueError(f"cannot find the head of {type(model).__name__}: expected an attribute "
                     f"'fc', 'head' or 'classifier'")


def _last_linear_or_conv(module: nn.Module) -> tuple[nn.Module, str, nn.Module]:
    """(parent, attribute, layer) of the last Linear or 1x1 Conv2d inside ``module``."""
    found = None
    for parent in module.modules():
        for attr, child in parent.named_children():
            if isinstance(child, nn.Linear) or (isinstance(child, nn.Conv2d)
                                                and child.kernel_size == (1, 1)):
                found = (parent, attr, child)
    if found is None:
        raise ValueError("the head holds no Linear or 1x1 Conv2d layer to replace")
    return found


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a fresh output layer for ``num_classes`` classes; return that layer.

    The last Linear (or SqueezeNet's final 1x1 convolution) of the head is swapped for a new,
    randomly initialised one with the same input size, dtype and device.
    ``ValueError`` for a count that is not a positive integer or a model without a head.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    attr, head = head_of(model)
    if isinstance(head, (nn.Linear, nn.Conv2d)):
        parent, name, old = model, attr, head
    else:
        parent, name, old = _last_linear_or_conv(head)
    if isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    else:
        new = nn.Conv2d(old.in_channels, num_classes, 1, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, name, new)
    return new


def set_trainable(model: nn.Module, trainable: Iterable[nn.Module] = ()) -> int:
    """Freeze every parameter of ``model`` except those of the ``trainable`` modules; return
    how many parameters are left trainable. Frozen batch-norm layers still update their running
    statistics in train mode: call ``.eval()`` on them to freeze those too. ``ValueError`` if a
    trainable module holds parameters that are not ``model``'s (its parameters would not be counted or trained).
    """
    trainable = list(trainable)
    own = {id(p) for p in model.parameters()}
    for module in trainable:   # a slice such as model.blocks[6:] is a new container of own layers
        if not all(id(p) in own for p in module.parameters()):
            raise ValueError(f"every trainable module must be part of model; "
                             f"{type(module).__name__} holds parameters that model does not "
                             "(pass model's own submodules)")
    for p in model.parameters():
        p.requires_grad_(False)
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def copy_first_layers(source: nn.Sequential, target: nn.Sequential, n: int) -> list[nn.Module]:
    """Copy the weights and batch-norm statistics of the first ``n`` layers of ``source`` into
    the same positions of ``target``; return those ``n`` layers of ``target`` (to freeze them or
    not). The layers must match in shape; the rest of ``target`` is left as it is."""
    if not 0 <= n <= min(len(source), len(target)):
        raise ValueError(f"n must be between 0 and {min(len(source), len(target))}, got {n}")
    for src, dst in zip(list(source)[:n], list(target)[:n]):
        dst.load_state_dict(src.state_dict())
    return list(target)[:n]


def param_groups(model: nn.Module, head: nn.Module, *, body_lr: float, head_lr: float
                 ) -> list[dict]:
    """Optimizer parameter groups: the trainable parameters of ``head`` at ``head_lr`` and all
    other trainable parameters at ``body_lr`` (discriminative fine-tuning). Empty groups are
    left out."""
    head_ids = {id(p) for p in head.parameters()}
    if not head_ids or not head_ids <= {id(p) for p in model.parameters()}:
        raise ValueError("head is not part of model (or has no parameters)")
    head_params = [p for p in head.parameters() if p.requires_grad]
    body_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [dict(params=body_params, lr=body_lr), dict(params=head_params, lr=head_lr)]
    return [g for g in groups if g["params"]]


class WithFrozenParts(nn.Module):
    """``model`` with some submodules kept in eval mode while the rest trains.

    ``set_trainable`` stops gradients, but in train mode a frozen batch-norm layer would still
    normalise with the batch's statistics and update its running ones, so a "frozen" body would
    drift toward the new data. ``train()`` here puts the ``frozen`` modules back in eval mode.
    """

    def __init__(self, model: nn.Module, frozen: Iterable[nn.Module]):
        super().__init__()
        self.model = model
        self._frozen = list(frozen)  # a plain list: the modules are registered once, in model
        for m in self._frozen:
            if not any(m is sub for sub in model.modules()):
                raise ValueError("every frozen module must be part of model")

    def train(self, mode: bool = True) -> "WithFrozenParts":
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

    def forward(self, x):
        return self.model(x)
