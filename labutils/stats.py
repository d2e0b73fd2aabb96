"""Numbers with error bars: spreads over seeds, binomial intervals, and honest comparisons.

A sentence "A beats B" in the book rests on ``compare(a, b)``: the 95% confidence interval of
the difference of the means (Welch's t interval over seeds) must exclude zero; otherwise the
two are within noise. With 2-3 seeds these intervals are wide, which is the honest answer.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np


def _check_confidence(confidence: float) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a probability in (0, 1), got {confidence!r}; "
                         f"for a 95% interval pass 0.95, not 95")


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"binomial_ci() needs {name} as a count (an integer), got "
                        f"{value!r} ({type(value).__name__}); from an accuracy acc on n items "
                        f"pass round(acc * n)")
    return int(value)


def _t_quantile(p: float, dof: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(p, dof))


@dataclass(frozen=True)
class Spread:
    """Values of one quantity over seeds, with their mean and sample standard deviation."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); 0 for a single value."""
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def format(self, scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
        """``"91.23 ± 0.15% (n=3)"``: mean ± sample std over seeds."""
        return (f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}{unit} "
                f"(n={self.n})")

    def __str__(self) -> str:
        return self.format()


def spread(values: Iterable[float]) -> Spread:
    """A ``Spread`` of finite numbers (at least one)."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("spread() needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"spread() got non-finite values: {values}")
    return Spread(values)


def run_seeds(experiment: Callable[[int], Mapping[str, float]],
              seeds: Sequence[int]) -> dict[str, Spread]:
    """Run ``experiment(seed)`` for each seed; return each reported quantity's ``Spread``."""
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    results = [dict(experiment(seed)) for seed in seeds]
    keys = set(results[0])
    if any(set(r) != keys for r in results):
        raise ValueError("every run of the experiment must report the same quantities")
    return {k: spread(r[k] for r in results) for k in results[0]}


def binomial_ci(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) for an accuracy of ``correct / total`` (e.g. on a
    test set).

    Args:
        correct, total: counts (Python or NumPy integers), 0 <= correct <= total, total > 0.
            From an accuracy ``acc`` on ``n`` items pass ``round(acc * n)``.
        confidence: in (0, 1), e.g. 0.95.

    Raises:
        TypeError: a count that is not an integer (an accuracy, a float).
        ValueError: counts out of range, a confidence outside (0, 1).
    """
    correct, total = _check_count(correct, "correct"), _check_count(total, "total")
    if total <= 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total and total > 0, got {correct}/{total}")
    _check_confidence(confidence)
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # min/max with p: at p = 0 or 1 rounding would otherwise leave p a hair outside the interval
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True)
class Comparison:
    """Mean of A minus mean of B, its confidence interval, and the verdict."""

    difference: float
    low: float
    high: float
    confidence: float

    @property
    def beyond_noise(self) -> bool:
        return self.low > 0 or self.high < 0

    def verdict(self, a: str = "A", b: str = "B") -> str:
        if not self.beyond_noise:
            return f"{a} and {b} are within noise"
        return f"{a} beats {b}" if self.difference > 0 else f"{b} beats {a}"


def compare(a: Spread | Sequence[float], b: Spread | Sequence[float],
            confidence: float = 0.95) -> Comparison:
    """Welch's t interval for mean(a) - mean(b) over independent seeds.

    Needs at least 2 finite values on each side (one run says nothing about noise) and a
    ``confidence`` in (0, 1) (0.95, not 95); ``ValueError`` otherwise. Zero spread on both
    sides gives a zero-width interval at the difference.
    """
    _check_confidence(confidence)
    a = a if isinstance(a, Spread) else spread(a)
    b = b if isinstance(b, Spread) else spread(b)
    if a.n < 2 or b.n < 2:
        raise ValueError(f"compare() needs at least 2 seeds per side, got {a.n} and {b.n}")
    diff = a.mean - b.mean
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return Comparison(diff, diff, diff, confidence)
    dof = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    half = _t_quantile(0.5 + confidence / 2, dof) * se
    return Comparison(diff, diff - half, diff + half, confidence)


def compare_paired(a: Sequence[float], b: Sequence[float],
                   confidence: float = 0.95) -> Comparison:
    """Paired t interval for mean(a - b) when a[i] and b[i] are measured on the same item
    (two denoisers on the same test images, say). The interval covers the variation over the
    items, not over training seeds. Needs two 1-D sequences of the same length >= 2, finite,
    and a ``confidence`` in (0, 1); ``ValueError`` otherwise."""
    _check_confidence(confidence)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"compare_paired() needs two 1-D sequences of the same length >= 2, got "
                         f"shapes {a.shape} and {b.shape}")
    d = a - b
    if not np.isfinite(d).all():
        raise ValueError("compare_paired() got non-finite values")
    diff, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    half = _t_quantile(0.5 + confidence / 2, len(d) - 1) * se
    return Comparison(diff, diff - half, diff + half, confidence)
