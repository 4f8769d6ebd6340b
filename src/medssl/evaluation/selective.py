"""Selective prediction: answer only when confident enough, refer the rest to a clinician.

The risk-coverage curve (Geifman & El-Yaniv, NeurIPS 2017) sorts decisions by confidence and
gives, for the k most confident, the coverage k/N and the error rate among them; AURC is the
mean of that risk over k = 1..N. The abstention table keeps decisions whose confidence reaches
each threshold and reports metrics on the kept cases only.
"""

from __future__ import annotations

import numpy as np

from medssl.data.task import Task
from medssl.evaluation.calibration import confidence_and_correct
from medssl.evaluation.metrics import label_metrics, predictions

THRESHOLDS = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))  # 0.50, 0.55, ..., 0.95


def accuracy_coverage(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/N and accuracy of the k most confident decisions, for k = 1..N."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=np.float64)[order])
    k = np.arange(1, len(order) + 1)
    return k / len(order), hits / k


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve: mean over k of the error rate of the top-k decisions."""
    if len(confidence) == 0:
        return float("nan")
    _, accuracy = accuracy_coverage(confidence, correct)
    return float(np.mean(1.0 - accuracy))


def abstention_table(
    task: Task, y_true: np.ndarray, probs: np.ndarray, thresholds=THRESHOLDS
) -> dict[float, dict[str, float]]:
    """Per threshold: coverage, accuracy, macro-F1 and kappa on the images kept.

    An image is kept when the confidence of its prediction reaches the threshold; for multi-label
    tasks, when every one of its label decisions does.
    """
    y_true, probs = np.asarray(y_true), np.asarray(probs)
    confidence, _ = confidence_and_correct(task, y_true, probs)
    if task == Task.MULTILABEL:
        confidence = confidence.reshape(probs.shape).min(axis=1)
    y_pred = predictions(task, probs)
    table = {}
    for threshold in thresholds:
        kept = confidence >= threshold
        row = {"coverage": float(kept.mean())}
        if kept.any():
            metrics = label_metrics(task, y_true[kept], y_pred[kept], probs.shape[1])
            row.update({k: metrics[k] for k in ("acc", "f1_macro", "kappa")})
        else:
            row.update({"acc": float("nan"), "f1_macro": float("nan"), "kappa": float("nan")})
        table[threshold] = row
    return table


def selective_metrics(task: Task, y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Flat keys: `aurc` and `abstain/0.80/coverage`, ... for one split."""
    confidence, correct = confidence_and_correct(task, np.asarray(y_true), np.asarray(probs))
    out = {"aurc": aurc(confidence, correct)}
    for threshold, row in abstention_table(task, y_true, probs).items():
        for name, value in row.items():
            out[f"abstain/{threshold:.2f}/{name}"] = value
    return out
