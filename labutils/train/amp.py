"""Mixed precision: its dtype, whether it is on by default, the autocast context, loss scaling.

bfloat16 keeps float32's exponent range, so it needs no loss scaling; float16 does (small
gradients underflow to zero), through a ``GradScaler``. GPUs compute bfloat16 natively from
compute capability 8.0 on (A100, L4, H100); older ones (Colab's T4 is 7.5, V100 7.0) get float16.
``torch.cuda.is_bf16_supported()`` is not the test: it answers True on a T4, which emulates bf16.

The environment variable ``LAB_AMP_DTYPE`` (``float16`` or ``bfloat16``) forces the dtype on
CUDA, e.g. ``LAB_AMP_DTYPE=float16`` to run the float16 + GradScaler path on a newer GPU
(``scripts/gpu_check.py --notebooks`` does). The CPU ignores it: there, autocast is bf16.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings

import torch

from labutils.device import cpu_has_native_bf16

AMP_DTYPE_ENV = "LAB_AMP_DTYPE"


def gpu_has_native_bf16(device: torch.device) -> bool:
    """Whether the CUDA ``device`` computes bfloat16 natively: compute capability >= 8.0."""
    return tuple(torch.cuda.get_device_capability(device)) >= (8, 0)


def amp_dtype(device: torch.device) -> torch.dtype:
    """The half-precision type autocast uses on ``device``: bfloat16, or float16 on CUDA GPUs
    older than compute capability 8.0 (or when ``LAB_AMP_DTYPE=float16`` forces it)."""
    if device.type != "cuda":
        return torch.bfloat16
    forced = os.environ.get(AMP_DTYPE_ENV, "").strip().lower()
    if forced:
        if forced not in ("float16", "bfloat16"):
            raise ValueError(f"{AMP_DTYPE_ENV}={forced!r} is not a mixed-precision dtype; use "
                             f"'float16' or 'bfloat16', or unset it to choose by the GPU")
        return getattr(torch, forced)
    return torch.bfloat16 if gpu_has_native_bf16(device) else torch.float16


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


def grad_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler | None:
    """A ``GradScaler`` when ``amp`` runs in float16 on ``device``, else None (bf16, float32).

    Make it once per run, not per epoch: it learns the loss scale as training goes.
    """
    if amp and amp_dtype(device) == torch.float16:
        return torch.amp.GradScaler(device.type)
    return None


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler | None = None) -> None:
    """``loss.backward()`` and ``optimizer.step()``, through ``scaler`` when one is given.

    With a scaler the loss is multiplied by the scale before the backward pass, the step
    divides the gradients back (``unscale_``: clip gradients only after it) and is skipped when
    any of them is inf or NaN, and ``update`` lowers the scale after such a step (raises it
    after 2,000 good ones).
    """
    if scaler is None:
        loss.backward()
        optimizer.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def dtype_name(device: torch.device, amp: bool) -> str | None:
    """``"bfloat16"`` or ``"float16"`` when ``amp`` is on (``History.amp_dtype``), else None."""
    return str(amp_dtype(device)).removeprefix("torch.") if amp else None


@functools.lru_cache(maxsize=1)
def _warn_emulated_bf16() -> None:
    warnings.warn("amp=True on a CPU without native bfloat16 support (no avx512_bf16/amx_bf16): "
                  "autocast will emulate bf16 and is likely slower than float32; pass amp=False",
                  RuntimeWarning, stacklevel=3)


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype(device))


@contextlib.contextmanager
def _cudnn_benchmark(device: torch.device):
    """cuDNN autotuning on for CUDA training of fixed-size batches (it times the convolution
    algorithms once per input shape, then reuses the fastest); off in deterministic mode, whose
    algorithms it could replace. The previous setting is restored afterwards."""
    saved = torch.backends.cudnn.benchmark
    if device.type == "cuda" and not torch.are_deterministic_algorithms_enabled():
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved
