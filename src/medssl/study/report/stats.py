"""Means over seeds with Student-t intervals, and paired differences against a baseline.

The level is the report's `confidence` (conf/report.yaml, `--confidence`). With 3-5 seeds the
normal approximation is far too narrow: at 95 %, t_{0.975, 2} = 4.30, not 1.96.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


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


def level_text(confidence: float) -> str:
    """`95 %` for 0.95: how the report names its intervals."""
    return f"{100 * confidence:g} %"


def quantile_text(confidence: float) -> str:
    """`t_{0.975, n-1}` for 0.95: the two-sided quantile the half-widths use."""
    return f"t_{{{(1 + confidence) / 2:g}, n-1}}"


def t_half_width(values: Sequence[float], confidence: float) -> float | None:
    """t_{(1+c)/2, n-1} · s / √n, with s the sample standard deviation (ddof=1)."""
    n = len(values)
    if n < 2:
        return None
    t = stats.t.ppf((1 + confidence) / 2, n - 1)
    return float(t * np.std(values, ddof=1) / math.sqrt(n))


def estimate(values: Sequence[float], confidence: float) -> Estimate | None:
    if not values:
        return None
    return Estimate(float(np.mean(values)), t_half_width(values, confidence), len(values))


def paired_difference(
    pairs: Sequence[tuple[float, float]], *, lower_is_better: bool, confidence: float
) -> PairedDifference | None:
    """`pairs` are (variant, baseline) values of the same seed."""
    differences = [variant - baseline for variant, baseline in pairs]
    summary = estimate(differences, confidence)
    if summary is None:
        return None
    won = sum((d < 0) if lower_is_better else (d > 0) for d in differences)
    return PairedDifference(summary, won)
