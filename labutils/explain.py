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
    parameters are frozen (``requires_grad=False``): the input is made to require gradients so
    that the layer's output is part of the graph. Call it outside ``torch.no_grad()``; the model
    is left in the mode it was in (use ``model.eval()`` for batch-norm networks).
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch (N, C, H, W), got shape {tuple(x.shape)}")
    if not any(m is layer for m in model.modules()):
        raise ValueError("layer is not a submodule of model")
    stored: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            raise ValueError(f"the layer must output (N, K, h, w) feature maps, got "
                             f"{getattr(output, 'shape', type(output))}")
        output.retain_grad()
        stored["maps"] = output

    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            scores = model(x.detach().clone().requires_grad_(True))
            if target is None:
                target = scores.argmax(dim=1)
            target = torch.as_tensor(target, device=scores.device).expand(len(x))
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
    return cam


def randomized_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every layer re-initialised (``reset_parameters``) from
    ``seed``: the model-randomisation test compares explanations of the two."""
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters") and module is not clone:
            module.reset_parameters()
    return clone


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps (any shapes with the same number of elements)."""
    from scipy.stats import spearmanr

    a, b = a.detach().flatten().cpu().numpy(), b.detach().flatten().cpu().numpy()
    if a.size != b.size:
        raise ValueError(f"maps of different sizes: {a.size} and {b.size}")
    return float(spearmanr(a, b).statistic)
