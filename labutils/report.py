"""The reproducibility footer: every chapter ends with ``run.report(metrics)``."""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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

    def report(self, metrics: dict[str, Any] | None = None, *, save: bool = True) -> dict[str, Any]:
        """Print versions, device, seed, mode, wall time and ``metrics``; save them as JSON."""
        import torchvision

        info = {
            "chapter": self.chapter,
            "mode": self.mode.name,
            "seed": self.seed,
            "device": describe_device(self.device),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "wall time (s)": round(time.perf_counter() - self.started, 1),
            "finished (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        }
        metrics = {k: (round(v, 4) if isinstance(v, float) else v)
                   for k, v in (metrics or {}).items()}
        width = max(len(k) for k in [*info, *metrics])
        print("Run report")
        for key, value in {**info, **metrics}.items():
            print(f"  {key:<{width}}  {value}")
        record = {**info, "metrics": metrics}
        if save:
            path = runs_dir() / f"{self.chapter}-{self.mode.name}.json"
            path.write_text(json.dumps(record, indent=1))
        return record
