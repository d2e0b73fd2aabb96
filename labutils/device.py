"""Device selection and seeding: called once in a notebook's setup cell, then passed explicitly."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def pick_device(prefer: str | None = None, *, verbose: bool = True) -> torch.device:
    """Return CUDA if available, else Apple MPS, else the CPU (or ``prefer`` if given).

    ``prefer`` (or the environment variable ``LAB_DEVICE``) forces a device: ``"cpu"``,
    ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (case and surrounding spaces do not matter).
    """
    where = f"prefer={prefer!r}" if prefer else f"LAB_DEVICE={os.environ.get('LAB_DEVICE')!r}"
    prefer = (prefer or os.environ.get("LAB_DEVICE") or "").strip().lower()
    if prefer:
        try:
            device = torch.device(prefer)
        except RuntimeError:  # torch's own message lists every backend it was built with
            device = None
        if device is None or device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"{where} is not a device; choose 'cpu', 'cuda', 'cuda:N' (N a GPU "
                             f"index) or 'mps', or unset LAB_DEVICE to pick one automatically")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was requested but CUDA is not available here; "
                               "use 'cpu' or unset LAB_DEVICE")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise RuntimeError(f"device {prefer!r} is not available: this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                               f"cuda:{torch.cuda.device_count() - 1}; pick one of those")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"device {prefer!r} was requested but Apple MPS is not available here; "
                               "use 'cpu' or unset LAB_DEVICE")
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
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be an int in [0, 2**32) (NumPy's seed range), got {seed!r}")
    seed = int(seed)  # NumPy integers too, e.g. a seed drawn with rng.integers
    random.seed(seed)
    np.random.seed(seed)  # for third-party code that still uses the legacy global RNG
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    torch.use_deterministic_algorithms(deterministic)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    return np.random.default_rng(seed)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 dot products natively (so bf16 autocast is fast).

    Detected from the CPU flags: ``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo`` (Linux,
    x86), else ``bf16`` on ARM (``Features: ... bf16``). Elsewhere (macOS, Windows) it answers
    False: without native support bf16 autocast is emulated and often slower than float32.
    """
    return _cpu_flags_have_bf16(_read_cpuinfo())


def cpu_model() -> str:
    """The processor's name, e.g. ``AMD EPYC 9R14`` (``model name`` in ``/proc/cpuinfo`` on
    Linux, else ``platform.processor()``); "unknown" when neither says. Training minutes depend
    on it: two hosts with the same core count can differ threefold."""
    return _cpu_model_from(_read_cpuinfo()) or platform.processor() or "unknown"


def _cpu_model_from(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "cpu model", "hardware") and value.strip():
            return " ".join(value.split())
    return ""


def _read_cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def _cpu_flags_have_bf16(cpuinfo: str) -> bool:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` computes: the device of its first parameter or buffer (CPU if none)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")
