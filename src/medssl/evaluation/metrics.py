"""Classification metrics for every MedMNIST task type, from scikit-learn where it has them.

`probs` is `(N, K)` class probabilities for binary (K = 2), multi-class and ordinal tasks, and
`(N, L)` per-label positive probabilities for multi-label ones. AUROC is one-vs-rest macro for
multi-class and the mean over labels for multi-label tasks (labels with one class are skipped).
Multi-label ACC, balanced ACC, kappa, NLL and Brier are means over labels of the binary metric;
Cohen's kappa is quadratic-weighted for ordinal tasks (RetinaMNIST), unweighted otherwise.
Ordinal tasks also get `grade_mae`, the mean absolute difference between predicted (argmax)
and true grade (lower is better); multi-label tasks `average_precision`, the macro average over
labels of scikit-learn's average precision (labels without a positive are skipped).
Per-class recall (sensitivity) is `recall/<k>` for class (or label) index k, so that a class a
classifier gave up on shows even when ACC and AUROC look fine; balanced ACC is their mean over
the classes present.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    cohen_kappa_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from medssl.data.task import Task
from medssl.evaluation.calibration import (
    confidence_and_correct,
    expected_calibration_error,
    maximum_calibration_error,
)

EPS = 1e-12


def predictions(task: str, probs: np.ndarray) -> np.ndarray:
    return (probs >= 0.5).astype(int) if task == Task.MULTILABEL else probs.argmax(axis=1)


def check_inputs(task: str, y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y_true, probs = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    if len(y_true) != len(probs):
        raise ValueError(f"{len(y_true)} labels but {len(probs)} predictions")
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    if task == Task.MULTILABEL and y_true.shape != probs.shape:
        raise ValueError(f"multi-label targets {y_true.shape} do not match probs {probs.shape}")
    if task != Task.MULTILABEL and y_true.ndim != 1:
        raise ValueError(f"{task} targets must be (N,), got shape {y_true.shape}")
    return y_true, probs


def auroc(task: str, y_true: np.ndarray, probs: np.ndarray) -> float:
    if task == Task.MULTILABEL:
        scores = [
            roc_auc_score(y_true[:, j], probs[:, j])
            for j in range(y_true.shape[1])
            if len(np.unique(y_true[:, j])) == 2
        ]
        return float(np.mean(scores)) if scores else float("nan")
    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    if probs.shape[1] == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    if len(present) < probs.shape[1]:
        # sklearn's OvR needs every class in y_true; average over the classes present.
        return float(np.mean([roc_auc_score(y_true == k, probs[:, k]) for k in present]))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", average="macro"))


def _per_label_mean(metric, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean([metric(y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])]))


def label_metrics(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> dict[str, float]:
    """The metrics that need only hard predictions (used again on the kept cases of selective prediction)."""
    if task == Task.MULTILABEL:
        return {
            "acc": float((y_pred == y_true).mean()),  # MedMNIST's ChestMNIST accuracy
            "balanced_acc": _per_label_mean(_balanced_acc, y_true, y_pred),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "precision": float(precision_score(y_true, y_pred, average="macro", zero_division=0)),
            "recall": float(recall_score(y_true, y_pred, average="macro", zero_division=0)),
            "kappa": _per_label_mean(_kappa_binary, y_true, y_pred),
        }
    labels = np.arange(n_classes)
    grades = {"grade_mae": _grade_mae(y_true, y_pred)} if task == Task.ORDINAL else {}
    return {
        **grades,
        "acc": float(accuracy_score(y_true, y_pred)),
        "balanced_acc": _balanced_acc(y_true, y_pred),
        "f1_macro": float(
            f1_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
        "precision": float(
            precision_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
        "recall": float(
            recall_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
        ),
        "kappa": _kappa(
            y_true, y_pred, labels, weights="quadratic" if task == Task.ORDINAL else None
        ),
    }


def per_class_recall(task: str, y_true: np.ndarray, y_pred: np.ndarray, n_classes: int):
    """`{"recall/<k>": recall of class (label) k}`; NaN for a class absent from `y_true`."""
    if task == Task.MULTILABEL:
        columns = [(y_true[:, k], y_pred[:, k]) for k in range(y_true.shape[1])]
        present = [bool(t.any()) for t, _ in columns]
        recalls = [
            float(recall_score(t, p, zero_division=0)) if ok else float("nan")
            for (t, p), ok in zip(columns, present, strict=True)
        ]
    else:
        recalls = recall_score(
            y_true, y_pred, labels=np.arange(n_classes), average=None, zero_division=0
        ).astype(float)
        recalls[np.bincount(y_true.astype(int), minlength=n_classes)[:n_classes] == 0] = np.nan
    return {f"recall/{k}": float(r) for k, r in enumerate(recalls)}


def _balanced_acc(y_true, y_pred) -> float:
    # Balanced ACC is the mean recall over the classes present in y_true, as scikit-learn defines it.
    if len(y_true) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "a single label was found": fine here
        return float(balanced_accuracy_score(y_true, y_pred))


def _kappa(y_true, y_pred, labels, weights=None) -> float:
    if len(y_true) == 0:
        return float("nan")
    if len(np.unique(np.concatenate([y_true, y_pred]))) < 2:
        # One class only on both sides: agreement is perfect but chance agreement is too (0/0).
        return float("nan")
    return float(cohen_kappa_score(y_true, y_pred, labels=labels, weights=weights))


def _grade_mae(y_true, y_pred) -> float:
    """Mean absolute error in grades: |predicted grade - true grade|, averaged over images."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(y_pred, dtype=np.float64) - y_true)))


def macro_average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Multi-label: the mean over labels with a positive of each label's average precision."""
    scores_per_label = [
        average_precision_score(y_true[:, j], scores[:, j])
        for j in range(y_true.shape[1])
        if y_true[:, j].any()
    ]
    return float(np.mean(scores_per_label)) if scores_per_label else float("nan")


def _kappa_binary(y_true, y_pred) -> float:
    return _kappa(y_true, y_pred, np.arange(2))


def nll(task: str, y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class (mean binary cross-entropy per label)."""
    if task == Task.MULTILABEL:
        p = np.clip(probs, EPS, 1 - EPS)
        return float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
    return float(log_loss(y_true, np.clip(probs, EPS, 1.0), labels=np.arange(probs.shape[1])))


def brier(task: str, y_true: np.ndarray, probs: np.ndarray) -> float:
    """Binary: mean (p_positive - y)^2; multi-class: mean over images of the squared distance
    to the one-hot label (Brier 1950); multi-label: the binary score averaged over labels."""
    if task == Task.MULTILABEL:
        return float(np.mean((probs - y_true) ** 2))
    if probs.shape[1] == 2:
        return float(brier_score_loss(y_true, probs[:, 1], pos_label=1))
    return float(
        brier_score_loss(y_true, probs, labels=np.arange(probs.shape[1]), scale_by_half=False)
    )


def ranking_auroc(
    task: str, y_true: np.ndarray, probs: np.ndarray, logits: np.ndarray | None
) -> float:
    """AUROC from logits where a monotone map links them to the probabilities (binary: the
    margin z1 - z0; multi-label: each label's logit), so that probabilities rounding to exactly
    0 or 1 in float64 do not create ties; from the probabilities otherwise."""
    if logits is None or task not in (Task.BINARY, Task.MULTILABEL):
        return auroc(task, y_true, probs)
    logits = np.asarray(logits, dtype=np.float64)
    if task == Task.BINARY:
        return auroc(
            task, y_true, np.stack([np.zeros(len(logits)), logits[:, 1] - logits[:, 0]], axis=1)
        )
    return auroc(task, y_true, logits)


def classification_metrics(
    task: str,
    y_true: np.ndarray,
    probs: np.ndarray,
    n_bins: int = 15,
    logits: np.ndarray | None = None,
) -> dict[str, float]:
    """Every headline metric for one split: ACC, balanced ACC, AUROC, macro-F1, precision,
    recall (macro, and per class: `recall/<k>`), kappa, NLL, Brier and calibration errors (ECE
    equal-width and equal-mass, MCE); ordinal: `grade_mae`; multi-label: `average_precision`.
    `logits`, when given, are the ones `probs` came from and only sharpen AUROC's ranking."""
    y_true, probs = check_inputs(task, y_true, probs)
    n_classes = probs.shape[1]
    confidence, correct = confidence_and_correct(task, y_true, probs)
    y_pred = predictions(task, probs)
    ranked = {}
    if task == Task.MULTILABEL:  # each label's logit ranks as its probability, without ties at 0/1
        scores = probs if logits is None else np.asarray(logits, dtype=np.float64)
        ranked["average_precision"] = macro_average_precision(y_true, scores)
    return {
        **label_metrics(task, y_true, y_pred, n_classes),
        **per_class_recall(task, y_true, y_pred, n_classes),
        "auroc": ranking_auroc(task, y_true, probs, logits),
        **ranked,
        "nll": nll(task, y_true, probs),
        "brier": brier(task, y_true, probs),
        "ece": expected_calibration_error(confidence, correct, n_bins),
        "ece_mass": expected_calibration_error(confidence, correct, n_bins, binning="mass"),
        "mce": maximum_calibration_error(confidence, correct, n_bins),
    }
