"""Class weights against imbalance, shared by the supervised method, the probe and fine-tuning.

`class_weight: balanced` is scikit-learn's heuristic: each class weighs n / (K n_k), so every
class contributes the same total weight to the loss (King and Zeng 2001); `null` weighs every
image alike.
"""

from __future__ import annotations

import numpy as np

from medssl.data.task import Task

CLASS_WEIGHTS = (None, "balanced")


def balanced_weights(task: str, labels: np.ndarray, n_outputs: int) -> np.ndarray:
    """scikit-learn's `class_weight="balanced"` as loss weights, from the labelled subset.

    Single-label tasks: class k weighs n / (K n_k), K the classes present (an absent class
    weighs 1; no image carries it). Multi-label tasks: each label's positives weigh
    n_negative / n_positive against its negatives (BCE's `pos_weight`), so that both sides of
    every label count equally; 1 for a label without positives or negatives."""
    labels = np.asarray(labels)
    if task == Task.MULTILABEL:
        positives = labels.sum(axis=0).astype(float)
        negatives = len(labels) - positives
        ok = (positives > 0) & (negatives > 0)
        return np.where(ok, negatives / np.maximum(positives, 1), 1.0)
    counts = np.bincount(labels.astype(int), minlength=n_outputs).astype(float)
    present = counts > 0
    return np.where(present, len(labels) / (present.sum() * np.maximum(counts, 1)), 1.0)
