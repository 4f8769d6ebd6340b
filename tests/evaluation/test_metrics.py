"""Metrics agree with scikit-learn or with a direct computation, for every task type."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medssl.evaluation.metrics import classification_metrics


def softmax_probs(rng, n, k, signal=2.0):
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 4), ("ordinal", 5)])
def test_single_label_metrics_equal_sklearn_and_direct_formulas(task, k):
    rng = np.random.default_rng(k)
    y, p = softmax_probs(rng, 300, k)
    m = classification_metrics(task, y, p)
    pred = p.argmax(1)
    assert m["acc"] == pytest.approx(accuracy_score(y, pred))
    assert m["balanced_acc"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["precision"] == pytest.approx(precision_score(y, pred, average="macro"))
    assert m["recall"] == pytest.approx(recall_score(y, pred, average="macro"))
    weights = "quadratic" if task == "ordinal" else None
    assert m["kappa"] == pytest.approx(cohen_kappa_score(y, pred, weights=weights))
    expected_auc = roc_auc_score(y, p[:, 1]) if k == 2 else roc_auc_score(y, p, multi_class="ovr")
    assert m["auroc"] == pytest.approx(expected_auc)
    # NLL and Brier by their definitions, written out.
    assert m["nll"] == pytest.approx(-np.mean(np.log(p[np.arange(len(y)), y])))
    onehot = np.eye(k)[y]
    expected_brier = np.mean((p[:, 1] - y) ** 2) if k == 2 else np.mean(((p - onehot) ** 2).sum(1))
    assert m["brier"] == pytest.approx(expected_brier)


def test_quadratic_kappa_by_hand():
    # Observed and expected disagreement weighted by (i - j)^2 / (K - 1)^2, Cohen 1968.
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    pred = np.array([0, 2, 2, 1, 1, 0, 0, 1])
    k = 3
    observed = np.zeros((k, k))
    for a, b in zip(y, pred, strict=True):
        observed[a, b] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(y)
    w = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)])
    kappa = 1 - (w * observed).sum() / (w * expected).sum()
    probs = np.eye(k)[pred] * 0.9 + 0.1 / k
    assert classification_metrics("ordinal", y, probs)["kappa"] == pytest.approx(kappa)


def test_multilabel_metrics_are_means_over_labels():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (200, 5))
    p = np.clip(0.5 * y + 0.5 * rng.random((200, 5)), 0, 1)
    m = classification_metrics("multilabel", y, p)
    pred = (p >= 0.5).astype(int)
    assert m["acc"] == pytest.approx((pred == y).mean())
    assert m["auroc"] == pytest.approx(np.mean([roc_auc_score(y[:, j], p[:, j]) for j in range(5)]))
    assert m["balanced_acc"] == pytest.approx(
        np.mean([balanced_accuracy_score(y[:, j], pred[:, j]) for j in range(5)])
    )
    assert m["kappa"] == pytest.approx(
        np.mean([cohen_kappa_score(y[:, j], pred[:, j]) for j in range(5)])
    )
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro"))
    bce = -(y * np.log(p.clip(1e-12)) + (1 - y) * np.log((1 - p).clip(1e-12)))
    assert m["nll"] == pytest.approx(bce.mean())
    assert m["brier"] == pytest.approx(((p - y) ** 2).mean())


def test_auroc_skips_labels_with_one_class_and_missing_classes():
    y = np.array([[0, 1], [1, 1], [0, 1], [1, 1]])
    p = np.array([[0.2, 0.9], [0.8, 0.7], [0.3, 0.6], [0.6, 0.9]])
    assert classification_metrics("multilabel", y, p)["auroc"] == pytest.approx(1.0)
    # A 3-class head on data where class 2 never occurs: mean OvR over the classes present.
    y3 = np.array([0, 1, 0, 1])
    p3 = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    assert classification_metrics("multiclass", y3, p3)["auroc"] == pytest.approx(1.0)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        classification_metrics("binary", np.array([0, 1, 1]), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="multi-label targets"):
        classification_metrics("multilabel", np.zeros((4, 3)), np.full((4, 2), 0.5))


def test_auroc_from_logits_survives_probabilities_that_round_to_one():
    # Margins of 40 and 50 both give P = 1.0 in float64; the logits keep them apart.
    y = np.array([0, 1, 1, 0])
    logits = np.array([[0.0, 40.0], [0.0, 50.0], [0.0, 45.0], [0.0, -1.0]])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert probs[0, 1] == probs[1, 1] == 1.0
    assert classification_metrics("binary", y, probs)["auroc"] == pytest.approx(
        0.75
    )  # a tie at P = 1
    assert classification_metrics("binary", y, probs, logits=logits)["auroc"] == pytest.approx(1.0)
