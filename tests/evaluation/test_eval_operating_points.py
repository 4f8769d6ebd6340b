"""Binary operating points: thresholds chosen on val reach their target there."""

from __future__ import annotations

import numpy as np
import pytest

from medssl.evaluation.operating_points import (
    operating_points,
    rates,
    threshold_for,
    youden_threshold,
)


def scores(rng, n):
    y = rng.integers(0, 2, n)
    return y, 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * (2 * y - 1))))


@pytest.mark.parametrize("target", [0.90, 0.95])
def test_sensitivity_and_specificity_targets_are_met_on_val_and_tight(target):
    y, s = scores(np.random.default_rng(0), 400)
    t = threshold_for("sens", target, y, s)
    assert rates(y, s, t)["sensitivity"] >= target
    # The next higher score as threshold would miss the target: the rule is the most specific one.
    higher = s[s > t]
    if len(higher):
        assert rates(y, s, higher.min())["sensitivity"] < target
    t = threshold_for("spec", target, y, s)
    assert rates(y, s, t)["specificity"] >= target
    lower = s[s < t]
    if len(lower):
        assert rates(y, s, lower.max())["specificity"] < target


def test_youden_matches_a_brute_force_search_and_rates_by_hand():
    y, s = scores(np.random.default_rng(1), 300)
    j = [rates(y, s, t)["sensitivity"] + rates(y, s, t)["specificity"] - 1 for t in np.unique(s)]
    assert rates(y, s, youden_threshold(y, s))["sensitivity"] + rates(y, s, youden_threshold(y, s))[
        "specificity"
    ] - 1 == pytest.approx(max(j))
    r = rates(np.array([1, 1, 0, 0, 1]), np.array([0.9, 0.4, 0.6, 0.1, 0.7]), 0.5)
    assert r == pytest.approx({"sensitivity": 2 / 3, "specificity": 0.5, "ppv": 2 / 3, "npv": 0.5})


def test_operating_points_report_every_target_on_test():
    rng = np.random.default_rng(2)
    (yv, sv), (yt, st) = scores(rng, 200), scores(rng, 200)
    out = operating_points(yv, sv, yt, st)
    for name in ("sens0.90", "sens0.95", "spec0.90", "spec0.95", "youden"):
        for stat in ("threshold", "sensitivity", "specificity", "ppv", "npv"):
            assert np.isfinite(out[f"op/{name}/{stat}"])
    with pytest.raises(ValueError, match="both classes"):
        operating_points(np.zeros(5), sv[:5], yt, st)
