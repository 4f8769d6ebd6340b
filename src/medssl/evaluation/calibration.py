"""Calibration: how far confidence is from accuracy, and temperature scaling to close the gap.

ECE and MCE follow Guo et al. (ICML 2017): decisions are grouped into bins by confidence; ECE is
the bin-share-weighted mean of |accuracy - mean confidence|, MCE its maximum. Bins are equal-width
over [0, 1] or equal-mass (each holds the same number of decisions, Nixon et al. 2019).
Temperature scaling divides the logits by one scalar T > 0 fitted on val by L-BFGS on the NLL.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medssl.data.task import Task

BINNINGS = ("width", "mass")
PROB_FLOOR = 1e-7


def confidence_and_correct(
    task: Task, y_true: np.ndarray, probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per decision: the predicted class's probability and whether it was right.

    Multi-label tasks make one binary decision per (image, label) at 0.5.
    """
    if task == Task.MULTILABEL:
        p = probs.ravel()
        predicted = p >= 0.5
        return np.where(predicted, p, 1 - p), predicted == y_true.ravel().astype(bool)
    return probs.max(axis=1), probs.argmax(axis=1) == y_true


def bin_indices(confidence: np.ndarray, n_bins: int = 15, binning: str = "width") -> np.ndarray:
    """The bin of each decision, in 0..n_bins-1."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        # Right-closed bins, as in Guo et al.; a confidence of exactly 0 joins the first bin.
        return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    if binning == "mass":
        bins = np.empty(len(confidence), dtype=int)
        order = np.argsort(confidence, kind="stable")
        for b, members in enumerate(np.array_split(order, n_bins)):
            bins[members] = b
        return bins
    raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")


def reliability_bins(
    confidence, correct, n_bins: int = 15, binning: str = "width"
) -> dict[str, np.ndarray]:
    """Per bin: count, mean confidence and accuracy (NaN for empty bins)."""
    confidence, correct = (
        np.asarray(confidence, dtype=np.float64),
        np.asarray(correct, dtype=np.float64),
    )
    bins = bin_indices(confidence, n_bins, binning)
    count = np.bincount(bins, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": accuracy}


def expected_calibration_error(
    confidence, correct, n_bins: int = 15, binning: str = "width"
) -> float:
    stats = reliability_bins(confidence, correct, n_bins, binning)
    if stats["count"].sum() == 0:
        return float("nan")
    filled = stats["count"] > 0
    gaps = np.abs(stats["accuracy"][filled] - stats["confidence"][filled])
    return float(np.sum(stats["count"][filled] / stats["count"].sum() * gaps))


def maximum_calibration_error(
    confidence, correct, n_bins: int = 15, binning: str = "width"
) -> float:
    stats = reliability_bins(confidence, correct, n_bins, binning)
    filled = stats["count"] > 0
    if not filled.any():
        return float("nan")
    return float(np.max(np.abs(stats["accuracy"][filled] - stats["confidence"][filled])))


def probs_to_logits(task: Task, probs: np.ndarray) -> np.ndarray:
    """Logits that give back `probs` (up to PROB_FLOOR): log-probabilities for softmax tasks
    (softmax is blind to a per-row constant), log-odds per label for multi-label ones. The floor
    is added, not clipped to, so the map stays strictly monotone and creates no ties."""
    p = np.clip(
        np.asarray(probs, dtype=np.float64), 0.0, 1.0
    )  # float32 vote shares may overshoot by an ulp
    if task == Task.MULTILABEL:
        return np.log(p + PROB_FLOOR) - np.log(1 - p + PROB_FLOOR)
    return np.log(p + PROB_FLOOR)


def logits_to_probs(task: Task, logits: np.ndarray) -> np.ndarray:
    z = torch.as_tensor(logits, dtype=torch.float64)
    return (torch.sigmoid(z) if task == Task.MULTILABEL else torch.softmax(z, dim=1)).numpy()


def _nll(task: Task, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == Task.MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return F.cross_entropy(logits, y)


def fit_temperature(
    task: Task, logits: np.ndarray, y_true: np.ndarray, max_iter: int = 50
) -> float:
    """The T > 0 minimising the NLL of `logits / T` on these (val) labels."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y_true), dtype=torch.long)
    log_t = torch.zeros(
        (), dtype=torch.float64, requires_grad=True
    )  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = _nll(task, z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    if not np.isfinite(temperature):
        return 1.0
    return temperature


class TemperatureScaler:
    """Fit on val logits, apply to test ones: `TemperatureScaler().fit(task, z_val, y_val)(z_test)`
    returns calibrated probabilities."""

    def __init__(self) -> None:
        self.temperature = 1.0
        self.task = None

    def fit(self, task: Task, logits: np.ndarray, y_true: np.ndarray) -> TemperatureScaler:
        self.task = task
        self.temperature = fit_temperature(task, logits, y_true)
        return self

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        if self.task is None:
            raise RuntimeError("TemperatureScaler must be fitted before use")
        return logits_to_probs(self.task, np.asarray(logits) / self.temperature)
