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

    def report(self, metrics: dict[str, Any] | None = None, *, save: bool = True,
               histories: Iterable[Any] = ()) -> dict[str, Any]:
        """Print versions, device, seed, mode, wall time and ``metrics``; save them as JSON.

        ``histories`` (the ``History`` of each ``fit`` run) adds how training ran: mixed
        precision (which dtype) and channels_last, as sets over the runs.
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
        histories = list(histories)
        if histories:
            info["mixed precision"] = ", ".join(sorted({h.amp_dtype or "off (float32)"
                                                        for h in histories}))
            info["channels_last"] = ", ".join(sorted({str(h.channels_last) for h in histories}))
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
