"""Classification metrics for every MedMNIST task type, from scikit-learn where it has them.

`probs` is `(N, K)` class probabilities for binary (K = 2), multi-class and ordinal tasks, and
`(N, L)` per-label positive probabilities for multi-label ones. AUROC is one-vs-rest macro for
multi-class and the mean over labels for multi-label tasks (labels with one class are skipped).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from medssl.evaluation.calibration import confidence_and_correct, expected_calibration_error


def predictions(task: str, probs: np.ndarray) -> np.ndarray:
    return (probs >= 0.5).astype(int) if task == "multilabel" else probs.argmax(axis=1)


def auroc(task: str, y_true: np.ndarray, probs: np.ndarray) -> float:
    if task == "multilabel":
        scores = [roc_auc_score(y_true[:, j], probs[:, j]) for j in range(y_true.shape[1])
                  if len(np.unique(y_true[:, j])) == 2]
        return float(np.mean(scores)) if scores else float("nan")
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", average="macro", labels=np.arange(probs.shape[1])))


def classification_metrics(task: str, y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} labels but {len(probs)} predictions")
    y_pred = predictions(task, probs)
    if task == "multilabel":
        # Mean over labels of the per-label accuracy, as MedMNIST reports for ChestMNIST.
        acc = float((y_pred == y_true).mean())
        f1 = f1_score(y_true, y_pred, average="macro", zero_division=0)
    else:
        acc = accuracy_score(y_true, y_pred)
        f1 = f1_score(y_true, y_pred, average="macro", labels=np.arange(probs.shape[1]), zero_division=0)
    confidence, correct = confidence_and_correct(task, y_true, probs)
    return {
        "acc": float(acc),
        "auroc": auroc(task, y_true, probs),
        "f1_macro": float(f1),
        "ece": expected_calibration_error(confidence, correct, n_bins),
    }
