"""Expected calibration error (Guo et al., ICML 2017): the gap between confidence and accuracy."""

from __future__ import annotations

import numpy as np


def confidence_and_correct(task: str, y_true: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per decision: the predicted class's probability and whether it was right.

    Multi-label tasks make one binary decision per (image, label) at 0.5.
    """
    if task == "multilabel":
        p = probs.ravel()
        predicted = p >= 0.5
        return np.where(predicted, p, 1 - p), predicted == y_true.ravel().astype(bool)
    return probs.max(axis=1), probs.argmax(axis=1) == y_true


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Equal-width bins over [0, 1]: sum over bins of (bin share) * |accuracy - mean confidence|."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, as in Guo et al.; a confidence of exactly 0 joins the first bin.
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)
