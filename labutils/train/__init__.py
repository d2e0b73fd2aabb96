"""One training loop for classification, regression (denoising) and segmentation.

``train_one_epoch`` and ``evaluate`` are plain functions (as in torchvision's reference scripts);
``fit`` runs them for a number of epochs and returns a ``History`` that the plotting helpers take.
Losses and metrics are averaged over samples (weighted by batch size), never over batches.
"""

from labutils.train.history import Metric, History
from labutils.train.amp import (AMP_DTYPE_ENV, amp_dtype, backward_step, dtype_name,
                                gpu_has_native_bf16, grad_scaler, resolve_amp,
                                _warn_emulated_bf16, _autocast)
from labutils.train.loop import has_conv, _progress, train_one_epoch, evaluate, monitor_mode, fit

__all__ = ["Metric", "History", "AMP_DTYPE_ENV", "amp_dtype", "backward_step", "dtype_name",
           "gpu_has_native_bf16", "grad_scaler", "resolve_amp", "has_conv", "train_one_epoch",
           "evaluate", "monitor_mode", "fit"]
