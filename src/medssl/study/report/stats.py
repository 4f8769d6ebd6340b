"""Means over seeds with 95 % Student-t intervals, and paired differences against a baseline.

With 3-5 seeds the normal approximation is far too narrow: t_{0.975, 2} = 4.30, not 1.96.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """`mean ± half_width` over `n` seeds; no interval from a single seed."""

    mean: float
    half_width: float | None
    n: int

    @property
    def low(self) -> float:
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width or 0.0)


@dataclass(frozen=True)
class PairedDifference:
    """Variant minus baseline, seed by seed; `won` counts seeds where the variant was better."""

    difference: Estimate
    won: int


def t_half_width(values: Sequence[float]) -> float | None:
    """t_{(1+c)/2, n-1} · s / √n, with s the sample standard deviation (ddof=1)."""
    n = len(values)
    if n < 2:
        return None
    t = stats.t.ppf((1 + CONFIDENCE) / 2, n - 1)
    return float(t * np.std(values, ddof=1) / math.sqrt(n))


def estimate(values: Sequence[float]) -> Estimate | None:
    if not values:
        return None
    return Estimate(float(np.mean(values)), t_half_width(values), len(values))


def paired_difference(
    pairs: Sequence[tuple[float, float]], lower_is_better: bool
) -> PairedDifference | None:
    """`pairs` are (variant, baseline) values of the same seed."""
    differences = [variant - baseline for variant, baseline in pairs]
    summary = estimate(differences)
    if summary is None:
        return None
    won = sum((d < 0) if lower_is_better else (d > 0) for d in differences)
    return PairedDifference(summary, won)
