"""Seeing what a CNN looks at: Grad-CAM (Selvaraju et al., 2017) and the model-randomisation
sanity check of Adebayo et al. (2018).

Grad-CAM weights the feature maps A_k (N, K, h, w) of one convolutional layer by the spatial
mean of the gradient of the class score with respect to them, sums over k, and keeps the
positive part: cam = ReLU(sum_k mean_ij(d score / d A_k) * A_k), shape (N, h, w).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor,
             target: torch.Tensor | int | None = None, *, relu: bool = True,
             size: tuple[int, int] | None = None) -> torch.Tensor:
    """Grad-CAM maps (N, h, w) of ``layer`` for class ``target`` (default: the predicted class).

    ``size`` resizes the maps bilinearly (e.g. to the input's (H, W)). Works for a model whose
    parameters are frozen (``requires_grad=False``) and inside ``torch.no_grad()``: the input is
    made to require gradients so that the layer's output is part of the graph. The model is left
    in the mode it was in (use ``model.eval()`` for batch-norm networks) and runs on the device
    of its parameters; the maps come back float on ``x``'s device. A layer whose output is later
    changed in place (an ``nn.ReLU(inplace=True)`` after it, a ResNet's ``out += identity``) is
    handled: the network downstream gets a copy, the maps use the layer's own output.

    Args:
        x: a floating-point batch (N, C, H, W), N >= 1.
        target: one class index for all images, or one per image (N,), each in [0, classes).

    Raises:
        ValueError: a batch that is not (N, C, H, W) or empty, a layer outside ``model`` or
            without (N, K, h, w) output, targets out of range or of the wrong length.
        TypeError: an integer input.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}; "
                         f"for one image pass x.unsqueeze(0)")
    if len(x) == 0:
        raise ValueError("grad_cam() got an empty batch (N = 0): pass at least one image")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point batch, got {x.dtype}; convert it first "
                        f"(e.g. x.float() / 255, normalised as the model expects)")
    if not any(m is layer for m in model.modules()):
        raise ValueError("layer is not a submodule of model: pass a module of model itself "
                         "(e.g. model.layer4), not of a copy")
    device = next((p.device for p in model.parameters()), x.device)
    stored: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise ValueError(f"the layer must output (N, K, h, w) feature maps, got "
                             f"{getattr(output, 'shape', type(output))}")
        stored["maps"] = output
        # downstream in-place operations (ReLU(inplace=True), ``out += identity``) would
        # overwrite the layer's output and rebase its gradient: hand them a copy instead
        return output.clone()

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            scores = model(x.detach().to(device).clone().requires_grad_(True))
            if scores.ndim != 2:
                raise ValueError(f"the model must return class scores (N, classes), got shape "
                                 f"{tuple(scores.shape)}")
            if target is None:
                target = scores.argmax(dim=1)
            target = torch.as_tensor(target, device=scores.device)
            if target.is_floating_point() or target.ndim > 1 or \
                    (target.ndim == 1 and len(target) != len(x)):
                raise ValueError(f"target must be one class index, or one target per image "
                                 f"({len(x)} integers), got {tuple(target.shape)} {target.dtype}")
            target = target.long().expand(len(x))
            classes = scores.shape[1]
            if bool(((target < 0) | (target >= classes)).any()):
                raise ValueError(f"target must lie in [0, {classes}), got "
                                 f"{target.unique().tolist()}")
            chosen = scores.gather(1, target.view(-1, 1)).sum()
            maps = stored["maps"]
            (grads,) = torch.autograd.grad(chosen, maps)
    finally:
        handle.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)           # (N, K, 1, 1)
    cam = (weights * maps).sum(dim=1).detach()                # (N, h, w)
    if relu:
        cam = cam.clamp_min(0)
    if size is not None:
        cam = F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear",
                            align_corners=False).squeeze(1)
    return cam.to(x.device)


def randomized_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every layer re-initialised (``reset_parameters``) from
    ``seed``: the model-randomisation test compares explanations of the two. ``model`` is not
    changed; note that this seeds torch's global generator with ``seed`` (as chapter 6 relies
    on for its committed outputs)."""
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters") and module is not clone:
            module.reset_parameters()
    return clone


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps (any shapes with the same number of elements, on
    any devices); NaN when either map is constant (no ranking to correlate).

    Raises:
        ValueError: maps of different sizes.
    """
    from scipy.stats import spearmanr

    a, b = a.detach().flatten().cpu().numpy(), b.detach().flatten().cpu().numpy()
    if a.size != b.size:
        raise ValueError(f"maps of different sizes: {a.size} and {b.size}")
    return float(spearmanr(a, b).statistic)
