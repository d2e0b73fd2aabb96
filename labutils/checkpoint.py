"""Checkpoints: weights in safetensors plus a small JSON of metadata, written atomically.

``save_checkpoint(model, "runs/lenet")`` writes ``runs/lenet.safetensors`` and
``runs/lenet.json``. Each file is written to a temporary name and then renamed, so an
interrupted save never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not fit the model they are loaded into."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def save_checkpoint(model: nn.Module, path: str | Path, *, arch: str | None = None,
                    kwargs: dict[str, Any] | None = None,
                    metrics: dict[str, float] | None = None) -> Path:
    """Save ``model``'s state dict and metadata (architecture, its arguments, metrics)."""
    weights, meta = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {"arch": arch or type(model).__name__, "kwargs": kwargs or {},
                "metrics": metrics or {}, "torch": torch.__version__}
    for target, write in ((weights, lambda p: save_file(state, str(p))),
                          (meta, lambda p: p.write_text(json.dumps(metadata, indent=1)))):
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        write(tmp)
        os.replace(tmp, target)
    return weights


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata saved next to a checkpoint."""
    _, meta = _paths(path)
    if not meta.exists():
        raise FileNotFoundError(f"no checkpoint metadata at {meta}")
    return json.loads(meta.read_text())


def load_checkpoint(model: nn.Module, path: str | Path,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load weights into ``model`` (which must have the same architecture); return the metadata.

    Raises ``CheckpointMismatchError`` naming missing, unexpected and wrongly shaped tensors.
    """
    weights, _ = _paths(path)
    if not weights.exists():
        raise FileNotFoundError(f"no checkpoint at {weights}; train the model first or check "
                                f"the path")
    state = load_file(str(weights), device=str(device))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        meta = load_metadata(path) if _paths(path)[1].exists() else {}
        problems = []
        if missing:
            problems.append(f"missing in checkpoint: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(f"not in model: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            problems.append("shape mismatch: " + "; ".join(shapes[:5]))
        raise CheckpointMismatchError(
            f"{weights} (saved from {meta.get('arch', 'an unknown model')} "
            f"{meta.get('kwargs', {})}) does not fit {type(model).__name__}: "
            + " | ".join(problems) + ". Build the model with the saved arguments.")
    model.load_state_dict(state)
    return load_metadata(path) if _paths(path)[1].exists() else {}
