"""Mixed precision: its dtype, whether it is on by default, and the autocast context."""

from __future__ import annotations

import contextlib
import functools
import warnings

import torch

from labutils.device import cpu_has_native_bf16


def amp_dtype(device: torch.device) -> torch.dtype:
    """The half-precision type autocast uses on ``device``: bfloat16, or float16 on old GPUs."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def resolve_amp(device: torch.device, amp: bool | None) -> bool:
    """Whether to train with mixed precision: by default on CUDA and on CPUs with native bf16.

    ``amp=True`` on a CPU without native bf16 (see ``cpu_has_native_bf16``) works but warns
    once, because emulated bf16 is usually slower than float32 there.
    """
    if device.type not in ("cpu", "cuda"):
        if amp:
            raise ValueError(f"mixed precision (amp=True) is supported on 'cpu' and 'cuda' here, "
                             f"not on {device.type!r}; pass amp=False")
        return False
    if amp is None:
        return device.type == "cuda" or cpu_has_native_bf16()
    if amp and device.type == "cpu" and not cpu_has_native_bf16():
        _warn_emulated_bf16()
    return bool(amp)


@functools.lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    warnings.warn("amp=True on a CPU without native bfloat16 support (no avx512_bf16/amx_bf16): "
                  "autocast will emulate bf16 and is likely slower than float32; pass amp=False",
                  RuntimeWarning, stacklevel=3)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))
