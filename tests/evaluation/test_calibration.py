"""ECE/MCE by hand, temperature scaling on an over-confident model, selective prediction."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medssl.evaluation.calibration import (
    TemperatureScaler,
    bin_indices,
    expected_calibration_error,
    logits_to_probs,
    maximum_calibration_error,
    probs_to_logits,
)
from medssl.evaluation.metrics import classification_metrics
from medssl.evaluation.selective import THRESHOLDS, abstention_table, accuracy_coverage, aurc


def test_perfectly_calibrated_decisions_have_zero_ece():
    # In each bin, the share correct equals the confidence exactly.
    confidence = np.repeat([0.6, 0.8, 1.0], 10)
    correct = np.concatenate([np.arange(10) < 6, np.arange(10) < 8, np.ones(10, bool)])
    # Equal-mass with 3 bins puts each confidence level in its own bin.
    for n_bins, binning in ((15, "width"), (3, "mass")):
        assert expected_calibration_error(confidence, correct, n_bins, binning) == pytest.approx(
            0.0
        )
        assert maximum_calibration_error(confidence, correct, n_bins, binning) == pytest.approx(0.0)


def test_over_confident_toy_case_by_hand():
    # 10 decisions at 0.95 with 5 right, 10 at 0.75 with 6 right: ECE = .5*.45 + .5*.15, MCE = .45.
    confidence = np.concatenate([np.full(10, 0.95), np.full(10, 0.75)])
    correct = np.concatenate([np.arange(10) < 5, np.arange(10) < 6])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.3)
    assert maximum_calibration_error(confidence, correct) == pytest.approx(0.45)
    assert expected_calibration_error(confidence, correct, 2, "mass") == pytest.approx(0.3)


def test_equal_mass_bins_hold_equal_counts_and_width_bins_are_right_closed():
    rng = np.random.default_rng(0)
    bins = bin_indices(rng.random(150), 15, "mass")
    assert np.all(np.bincount(bins) == 10)
    # 1/15 lies on the first edge: right-closed puts it in bin 0, a hair above goes to bin 1.
    assert bin_indices(np.array([0.0, 1 / 15, 1 / 15 + 1e-9, 1.0]), 15).tolist() == [0, 0, 1, 14]


def test_ece_loop_reference_agrees():
    rng = np.random.default_rng(3)
    confidence, correct = rng.random(500) * 0.5 + 0.5, rng.random(500) < 0.7
    reference = 0.0
    for lo in np.linspace(0, 1, 16)[:-1]:
        members = (confidence > lo) & (confidence <= lo + 1 / 15)
        if members.any():
            reference += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    assert expected_calibration_error(confidence, correct) == pytest.approx(reference)


def over_confident(rng, n, k, scale=4.0):
    """Labels drawn from softmax(z), model logits scale * z: too sure by a factor `scale`."""
    z = rng.normal(size=(n, k)) * 1.5
    p_true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p_true])
    return y, scale * z


@pytest.mark.parametrize("k", [2, 4])
def test_temperature_scaling_recovers_the_temperature_and_lowers_nll(k):
    rng = np.random.default_rng(k)
    task = "binary" if k == 2 else "multiclass"
    y_val, z_val = over_confident(rng, 3000, k)
    y_test, z_test = over_confident(rng, 3000, k)
    scaler = TemperatureScaler().fit(task, z_val, y_val)
    assert scaler.temperature == pytest.approx(4.0, rel=0.15)
    p_test = logits_to_probs(task, z_test)
    before, after = (
        classification_metrics(task, y_test, p_test),
        classification_metrics(task, y_test, scaler(z_test)),
    )
    assert after["nll"] < before["nll"]
    assert after["ece"] < before["ece"]
    assert after["acc"] == pytest.approx(before["acc"])  # argmax is unchanged
    if k == 2:
        assert after["auroc"] == pytest.approx(before["auroc"], abs=1e-12)


def test_temperature_scaling_multilabel_keeps_auroc():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(2000, 3)) * 2
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(int)
    p = 1 / (1 + np.exp(-3 * z))
    scaled = TemperatureScaler().fit("multilabel", 3 * z, y)(3 * z)
    assert (
        classification_metrics("multilabel", y, scaled)["nll"]
        < classification_metrics("multilabel", y, p)["nll"]
    )
    for j in range(3):
        assert roc_auc_score(y[:, j], scaled[:, j]) == pytest.approx(
            roc_auc_score(y[:, j], p[:, j])
        )


def test_aurc_and_coverage_curve_by_hand():
    confidence = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 0, 1, 1], bool)
    coverage, accuracy = accuracy_coverage(confidence, correct)
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert accuracy == pytest.approx([1, 0.5, 2 / 3, 0.75])
    assert aurc(confidence, correct) == pytest.approx(np.mean([0, 0.5, 1 / 3, 0.25]))


def test_abstention_table_keeps_confident_cases():
    y = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.97, 0.55, 0.6, 0.3])
    table = abstention_table("binary", y, np.stack([1 - p1, p1], 1))
    assert list(table) == list(THRESHOLDS) and THRESHOLDS[0] == 0.5 and THRESHOLDS[-1] == 0.95
    # At 0.85: kept are 0.1 (conf .9, right) and 0.97 (right).
    assert table[0.85]["coverage"] == pytest.approx(0.4) and table[0.85]["acc"] == 1.0
    assert table[0.5]["coverage"] == 1.0 and table[0.5]["acc"] == pytest.approx(0.6)
    assert table[0.95]["coverage"] == pytest.approx(0.2)


@pytest.mark.parametrize("task", ["binary", "multilabel"])
def test_probs_to_logits_round_trips_and_keeps_order(task):
    p1 = np.array([0.0, 1e-9, 0.3, 0.7, 1.0])
    probs = np.stack([1 - p1, p1], 1) if task == "binary" else p1[:, None]
    back = logits_to_probs(task, probs_to_logits(task, probs))
    assert back == pytest.approx(probs, abs=1e-6)
    assert np.all(np.diff(back[:, -1]) > 0)  # no ties made at 0 or 1
