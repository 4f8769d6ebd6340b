"""Operating points of a binary classifier: a threshold on P(positive) chosen on val, used on test.

A target sensitivity s takes the highest threshold whose val sensitivity is at least s (the most
specific rule that finds enough positives); a target specificity the lowest threshold whose val
specificity is at least s; Youden's J the threshold maximising sensitivity + specificity - 1.
The image is called positive when P(positive) >= threshold.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve

TARGETS = (("sens", 0.90), ("sens", 0.95), ("spec", 0.90), ("spec", 0.95))


def confusion_counts(
    y_true: np.ndarray, scores: np.ndarray, threshold: float
) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) of the rule `scores >= threshold`."""
    y, positive = np.asarray(y_true).astype(bool), np.asarray(scores) >= threshold
    return (
        int(np.sum(positive & y)),
        int(np.sum(positive & ~y)),
        int(np.sum(~positive & ~y)),
        int(np.sum(~positive & y)),
    )


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def rates(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    tp, fp, tn, fn = confusion_counts(y_true, scores, threshold)
    return {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
    }


def _roc(y_true: np.ndarray, scores: np.ndarray):
    """Every distinct score as a threshold (plus +inf) with the rule's FPR and TPR."""
    if len(np.unique(y_true)) < 2:
        raise ValueError("operating points need both classes among the val labels")
    fpr, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def threshold_for(kind: str, target: float, y_true: np.ndarray, scores: np.ndarray) -> float:
    """The val threshold for a target sensitivity (`kind="sens"`) or specificity (`"spec"`)."""
    fpr, tpr, thresholds = _roc(y_true, scores)
    if kind == "sens":
        return float(thresholds[tpr >= target].max())  # the lowest threshold always has TPR 1
    if kind == "spec":
        return float(thresholds[1 - fpr >= target].min())  # +inf always has specificity 1
    raise ValueError(f"kind must be 'sens' or 'spec', got {kind!r}")


def youden_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, thresholds = _roc(y_true, scores)
    return float(thresholds[np.argmax(tpr - fpr)])


def val_thresholds(y_val, p_val) -> dict[str, float]:
    """The threshold of each operating point (`sens0.90`, ..., `youden`), chosen on val."""
    y_val, p_val = np.asarray(y_val), np.asarray(p_val)
    chosen = {
        f"{kind}{target:.2f}": threshold_for(kind, target, y_val, p_val) for kind, target in TARGETS
    }
    chosen["youden"] = youden_threshold(y_val, p_val)
    return chosen


def measured_at(thresholds: dict[str, float], y_test, p_test) -> dict[str, float]:
    """Flat keys `op/<name>/threshold`, `op/<name>/sensitivity`, ... of each threshold on test."""
    y_test, p_test = np.asarray(y_test), np.asarray(p_test)
    out = {}
    for name, threshold in thresholds.items():
        out[f"op/{name}/threshold"] = threshold
        for stat, value in rates(y_test, p_test, threshold).items():
            out[f"op/{name}/{stat}"] = value
    return out


def operating_points(y_val, p_val, y_test, p_test) -> dict[str, float]:
    """Flat keys `op/sens0.90/threshold`, `op/sens0.90/sensitivity`, ... measured on test.

    `p_val`, `p_test`: P(positive) per image.
    """
    return measured_at(val_thresholds(y_val, p_val), y_test, p_test)
