"""The reproducibility footer: every chapter ends with ``run.report(metrics)``."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from labutils.data import REPO_ROOT
from labutils.device import describe_device
from labutils.mode import RunMode


def runs_dir() -> Path:
    """Git-ignored folder for run reports and checkpoints (``$LAB_RUNS``, default ``runs/``)."""
    path = Path(os.environ.get("LAB_RUNS") or REPO_ROOT / "runs").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class RunRecord:
    """Started in a chapter's setup cell; ``report`` at the end prints and saves the footer."""

    chapter: str
    seed: int
    mode: RunMode
    device: torch.device
    started: float = field(default_factory=time.perf_counter)
    _training: set[tuple[str | None, bool]] = field(default_factory=set, init=False, repr=False)

    def record_training(self, *, amp_dtype: str | torch.dtype | None = None,
                        channels_last: bool = False) -> None:
        """Note how a model was trained (mixed-precision dtype or None, channels_last), for
        chapters that train without ``fit``; ``fit`` runs are noted via ``report(histories=)``."""
        if isinstance(amp_dtype, torch.dtype):
            amp_dtype = str(amp_dtype).removeprefix("torch.")
        self._training.add((amp_dtype, bool(channels_last)))

    def report(self, metrics: dict[str, Any] | None = None, *, save: bool = True,
               histories: Iterable[Any] = ()) -> dict[str, Any]:
        """Print versions, device, seed, mode, wall time and ``metrics``; save them as JSON.

        ``histories`` (the ``History`` of each ``fit`` run) adds how training ran: mixed
        precision (which dtype) and channels_last, as sets over the runs, together with what
        ``record_training`` noted. Neither given: those two lines are left out.
        """
        import torchvision
        from labutils.device import cpu_has_native_bf16, cpu_model

        info = {
            "chapter": self.chapter,
            "mode": self.mode.name,
            "seed": self.seed,
            "device": describe_device(self.device),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "CPU": cpu_model(),
            "native bf16 CPU": cpu_has_native_bf16(),
            "wall time (s)": round(time.perf_counter() - self.started, 1),
            "finished (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        }
        training = self._training | {(h.amp_dtype, bool(h.channels_last)) for h in histories}
        if training:
            info["mixed precision"] = ", ".join(sorted({dtype or "off (float32)"
                                                        for dtype, _ in training}))
            info["channels_last"] = ", ".join(sorted({str(cl) for _, cl in training}))
        metrics = {k: _plain(v) for k, v in (metrics or {}).items()}
        width = max(len(k) for k in [*info, *metrics])
        print("Run report")
        for key, value in {**info, **metrics}.items():
            print(f"  {key:<{width}}  {value}")
        record = {**info, "metrics": metrics}
        if save:  # written under a temporary name, then renamed: never a half-written report
            path = runs_dir() / f"{self.chapter}-{self.mode.name}.json"
            text = json.dumps(record, indent=1)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(text)
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return record


def _plain(value: Any) -> Any:
    """A metric as JSON can store it: NumPy scalars and one-element tensors become numbers,
    floats are rounded to 4 decimals."""
    if isinstance(value, np.generic) or (isinstance(value, torch.Tensor) and value.numel() == 1):
        value = value.item()
    return round(value, 4) if isinstance(value, float) else value
