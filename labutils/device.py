"""Device selection and seeding: called once in a notebook's setup cell, then passed explicitly."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None, *, verbose: bool = True) -> torch.device:
    """Return CUDA if available, else Apple MPS, else the CPU (or ``prefer`` if given).

    ``prefer`` (or the environment variable ``LAB_DEVICE``) forces a device such as ``"cpu"``.
    """
    prefer = prefer or os.environ.get("LAB_DEVICE")
    if prefer:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was requested but CUDA is not available here; "
                               "use 'cpu' or unset LAB_DEVICE")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {prefer!r} was requested but Apple MPS is not available here")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"Using device: {describe_device(device)}")
    return device


def describe_device(device: torch.device) -> str:
    """A human-readable name: the GPU model, or the CPU with its thread count."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def seed_everything(seed: int, *, deterministic: bool = False) -> np.random.Generator:
    """Seed Python, NumPy and torch (all devices); return a fresh ``np.random.Generator``.

    With ``deterministic=True`` torch uses deterministic algorithms only (slower on GPU, and an
    error is raised for operations that have none).
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)  # for third-party code that still uses the legacy global RNG
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    torch.use_deterministic_algorithms(deterministic)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)
