"""Checkpoints: one safetensors file holding the weights and, in its header, JSON metadata.

``save_checkpoint(model, "runs/lenet")`` writes ``runs/lenet.safetensors``. The metadata
(architecture, its arguments, metrics, a SHA-256 of the weights) lives in the same file, which is
written under a temporary name and renamed over the old one: after an interrupt the checkpoint
is either the old one or the new one, and no temporary file is left behind.

Loading checks everything before it touches the model: the header can be read, the metadata is
valid JSON, every tensor name and shape fits the model, and the weights match their checksum.
Checkpoints written before the metadata moved into the header (weights plus a ``.json`` beside
them) still load.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

_KEY = "labutils"  # the safetensors header entry that holds our JSON metadata


class CheckpointMismatchError(ValueError):
    """The checkpoint's tensors do not fit the model they are loaded into."""


class CheckpointCorruptError(ValueError):
    """The checkpoint file (or its metadata) is truncated, damaged or not a checkpoint."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    """The weights file and the JSON that checkpoints of the old two-file format had beside it."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def _digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """JSON fallback: NumPy scalars and one-element tensors become Python numbers."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _to_json(metadata: dict[str, Any]) -> str:
    """The metadata as JSON, or a TypeError naming the first value that cannot be stored."""
    for group in ("kwargs", "metrics"):
        if not isinstance(metadata[group], dict):
            raise TypeError(f"{group} must be a dict, got {type(metadata[group]).__name__}")
        for key, value in metadata[group].items():
            try:
                json.dumps(value, default=_plain)
            except (TypeError, ValueError) as err:
                raise TypeError(f"{group}[{key!r}] = {value!r:.60} cannot be saved as JSON "
                                f"({err}); pass numbers, strings, lists or dicts (e.g. float(x)). "
                                f"Nothing was written.") from err
    return json.dumps(metadata, default=_plain)


def save_checkpoint(model: nn.Module, path: str | Path, *, arch: str | None = None,
                    kwargs: dict[str, Any] | None = None,
                    metrics: dict[str, float] | None = None) -> Path:
    """Save ``model``'s state dict and metadata (architecture, its arguments, metrics) in one file.

    Returns the path of the ``.safetensors`` file. An old-format ``.json`` beside it is removed.
    """
    weights, old_json = _paths(path)
    # safetensors refuses shared or non-contiguous storage: store independent contiguous copies.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    header = _to_json({"arch": arch or type(model).__name__, "kwargs": kwargs or {},
                       "metrics": metrics or {}, "torch": torch.__version__,
                       "sha256": _digest(state)})
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(f".{weights.name}.{os.getpid()}.tmp")
    try:
        save_file(state, str(tmp), metadata={_KEY: header})
        os.replace(tmp, weights)
    finally:  # after success the name is gone; after an error or interrupt, remove the rest
        tmp.unlink(missing_ok=True)
    old_json.unlink(missing_ok=True)  # stale: the header now holds the metadata
    return weights


def _corrupt(path: Path, problem: str) -> CheckpointCorruptError:
    return CheckpointCorruptError(
        f"{path} {problem}: the file is truncated or damaged (an interrupted copy or download?). "
        f"Delete it and save the checkpoint again (re-run the training cell), or restore a good "
        f"copy.")


def _read_header(weights: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, Any] | None]:
    """Tensor shapes and our metadata (None if the file has none), read without the weights."""
    try:
        with safe_open(str(weights), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            raw = (f.metadata() or {}).get(_KEY)
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise _corrupt(weights, f"is not a readable safetensors file ({err})") from err
    if raw is None:
        return shapes, None
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise _corrupt(weights, f"has unreadable metadata in its header ({err})") from err
    if not isinstance(meta, dict):
        raise _corrupt(weights, f"has metadata that is not a JSON object ({raw[:40]!r})")
    return shapes, meta


def _read_old_json(old_json: Path) -> dict[str, Any]:
    try:
        meta = json.loads(old_json.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _corrupt(old_json, f"(the checkpoint's metadata) is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise _corrupt(old_json, "(the checkpoint's metadata) is not a JSON object")
    return meta


def _metadata(path: str | Path) -> tuple[dict[str, tuple[int, ...]], dict[str, Any] | None]:
    """Shapes and metadata of the checkpoint at ``path``: from the header, else the old JSON."""
    weights, old_json = _paths(path)
    if not weights.exists():
        raise FileNotFoundError(f"no checkpoint at {weights}; train the model first or check "
                                f"the path")
    shapes, meta = _read_header(weights)
    if meta is None and old_json.exists():
        meta = _read_old_json(old_json)
    return shapes, meta


def load_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata saved with a checkpoint (architecture, its arguments, metrics)."""
    _, meta = _metadata(path)
    if meta is None:
        raise FileNotFoundError(f"no checkpoint metadata in {_paths(path)[0]} (it was not saved "
                                f"by save_checkpoint); load it with load_checkpoint instead")
    return meta


def load_checkpoint(model: nn.Module, path: str | Path,
                    device: torch.device | str = "cpu") -> dict[str, Any]:
    """Load weights into ``model`` (which must have the same architecture); return the metadata.

    Everything is checked before the model is changed. Raises ``FileNotFoundError`` if there is
    no checkpoint, ``CheckpointCorruptError`` if it is damaged, and ``CheckpointMismatchError``
    naming missing, unexpected and wrongly shaped tensors. ``device`` is where the tensors are
    read to before they are copied into the model's own parameters.
    """
    weights, _ = _paths(path)
    shapes, meta = _metadata(path)
    meta = meta or {}
    own = model.state_dict()
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    wrong = [f"{k}: checkpoint {shapes[k]} vs model {tuple(own[k].shape)}"
             for k in sorted(set(own) & set(shapes)) if shapes[k] != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing in checkpoint: {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(f"not in model: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            problems.append("shape mismatch: " + "; ".join(wrong[:5]))
        raise CheckpointMismatchError(
            f"{weights} (saved from {meta.get('arch', 'an unknown model')} "
            f"{meta.get('kwargs', {})}) does not fit {type(model).__name__}: "
            + " | ".join(problems) + ". Build the model with the saved arguments.")
    try:
        state = load_file(str(weights), device=str(device))
    except Exception as err:
        raise _corrupt(weights, f"could not be read ({err})") from err
    if "sha256" in meta and _digest(state) != meta["sha256"]:
        raise _corrupt(weights, "has weights that do not match the checksum saved with them")
    model.load_state_dict(state)
    return meta
