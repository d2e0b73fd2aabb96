"""The run-mode switch: full (default) runs the real experiment, quick shrinks it for CI.

The switch is the environment variable ``LAB_QUICK``: ``1``/``true``/``yes`` selects quick mode.
It is read here and nowhere else. Quick mode runs the same code on less data and fewer epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class RunMode:
    """Which mode a notebook runs in; ``choose`` picks a setting for it."""

    quick: bool

    @property
    def name(self) -> str:
        return "quick" if self.quick else "full"

    def choose(self, *, full: T, quick: T) -> T:
        """Return ``quick`` in quick mode and ``full`` otherwise."""
        return quick if self.quick else full

    def __str__(self) -> str:
        return self.name


def run_mode() -> RunMode:
    """Read ``LAB_QUICK`` from the environment."""
    raw = os.environ.get("LAB_QUICK", "").strip().lower()
    if raw in _TRUE:
        return RunMode(quick=True)
    if raw in _FALSE:
        return RunMode(quick=False)
    raise ValueError(f"LAB_QUICK must be one of {sorted(_TRUE | _FALSE - {''})}, got {raw!r}")
