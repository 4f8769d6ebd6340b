"""MC dropout (Gal & Ghahramani, ICML 2016): dropout kept on at test, T stochastic passes.

With `eval.analyses.mc_dropout.samples` = T > 0, fine-tuning trains with dropout of `rate`
before the head, and each test image gets T softmax (multi-label: sigmoid) outputs p_t. Per
decision:

- predictive entropy H[mean_t p_t] (total uncertainty),
- mutual information H[mean_t p_t] - mean_t H[p_t] (the part due to the weights, BALD),

and the accuracy-coverage curve of the MC mean's predictions ranked by each, beside the one of
the deterministic softmax ranked by its confidence (`test/<p>/aurc`, selective.py). Multi-label
tasks make one binary decision per (image, label), as the calibration metrics do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.evaluation.selective import aurc

EPS = 1e-12


@dataclass
class MCDropout:
    """Config `eval.analyses.mc_dropout`; `samples: 0` is off."""

    samples: int
    rate: float
    seed: int

    def __post_init__(self) -> None:
        if self.samples < 0 or self.samples == 1:
            raise MedsslError(
                "eval.analyses.mc_dropout.samples must be 0 (off) or at least 2, "
                f"got {self.samples}."
            )
        if not 0.0 <= self.rate < 1.0 or (self.samples and self.rate == 0.0):
            raise MedsslError(
                "eval.analyses.mc_dropout.rate must lie in (0, 1) while MC dropout is on, "
                f"got {self.rate}."
            )

    @property
    def enabled(self) -> bool:
        return self.samples > 0

    @property
    def training_dropout(self) -> float:
        """Dropout before the fine-tuning head: on only with MC dropout, so that fine-tuning
        without it stays what it was."""
        return self.rate if self.enabled else 0.0


def decision_probs(task: Task, sample_logits: np.ndarray) -> np.ndarray:
    """`(T, N, K)` logits -> `(T, D, classes)` probabilities per decision: D = N images with K
    classes, or D = N * L binary decisions for multi-label tasks."""
    probs = np.stack([logits_to_probs(task, z) for z in sample_logits])
    if task == Task.MULTILABEL:
        positive = probs.reshape(len(probs), -1)
        return np.stack([1.0 - positive, positive], axis=-1)
    return probs


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats along the last axis."""
    return -(p * np.log(np.clip(p, EPS, 1.0))).sum(axis=-1)


def mc_statistics(task: Task, sample_logits: np.ndarray) -> dict[str, np.ndarray]:
    """Per decision: the MC mean probabilities, predictive entropy and mutual information."""
    probs = decision_probs(task, sample_logits)
    mean = probs.mean(axis=0)
    total = entropy(mean)
    # Clipped at 0: the two terms agree to rounding when every sample says the same.
    mutual_info = np.maximum(total - entropy(probs).mean(axis=0), 0.0)
    return {"mean_probs": mean, "entropy": total, "mutual_info": mutual_info}


def decision_labels(task: Task, y_true: np.ndarray) -> np.ndarray:
    return np.asarray(y_true).reshape(-1).astype(int) if task == Task.MULTILABEL else y_true


def mc_metrics(task: Task, y_true: np.ndarray, sample_logits: np.ndarray) -> dict[str, float]:
    """Accuracy and AUROC of the MC mean, mean entropy and mutual information, and the AURC of
    the MC mean's decisions ranked by low entropy (`aurc`) and by low mutual information
    (`aurc_mi`)."""
    stats = mc_statistics(task, sample_logits)
    correct = stats["mean_probs"].argmax(axis=1) == decision_labels(task, y_true)
    mean_probs = np.stack([logits_to_probs(task, z) for z in sample_logits]).mean(axis=0)
    return {
        "acc": float(correct.mean()),
        "auroc": auroc(task, np.asarray(y_true), mean_probs),
        "entropy_mean": float(stats["entropy"].mean()),
        "mutual_info_mean": float(stats["mutual_info"].mean()),
        "aurc": aurc(-stats["entropy"], correct),
        "aurc_mi": aurc(-stats["mutual_info"], correct),
    }
