"""Model selection on val during training: keep the epoch whose classifier scores best.

MedMNIST v2 trains its baselines for a fixed budget and reports the checkpoint with the best
val AUROC. After every epoch `ValSelection` scores `method.classify` on the val images (eval
mode, no random numbers drawn, so training itself is unchanged) and keeps a CPU copy of the
method's state when the score beats every earlier one (ties keep the earlier epoch, as
MedMNIST's `>` does). Its state rides in the checkpoint, so a resumed run picks the same epoch;
`restore` loads the kept state once training ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch

from medssl.data.intensity import IntensityMapping
from medssl.data.model_input import to_model_input
from medssl.training.device import autocast

log = logging.getLogger(__name__)

# `score(labels, logits) -> float`: higher is better; NaN (e.g. one class in val) never wins.
Score = Callable[[np.ndarray, np.ndarray], float]


class ValSelection:
    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        score: Score,
        batch_size: int = 512,
        intensity: IntensityMapping | None = None,
    ) -> None:
        self.images, self.labels, self.intensity = images, labels.cpu().numpy(), intensity
        self.score, self.batch_size = score, batch_size
        self.best_score = -math.inf
        self.best_epoch = 0  # 0: no epoch has scored yet
        self.best_state: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def logits(self, method, device: torch.device, precision: str) -> np.ndarray:
        was_training = method.training
        method.eval()
        parts = []
        for start in range(0, len(self.images), self.batch_size):
            batch = self.images[start : start + self.batch_size].to(device)
            x = to_model_input(batch, self.intensity)
            with autocast(device, precision):
                parts.append(method.classify(x).float().cpu())
        method.train(was_training)
        return torch.cat(parts).double().numpy()

    def end_epoch(self, method, epoch: int, device: torch.device, precision: str) -> dict:
        """Score epoch `epoch` (1-based), keep it if best; the epoch record's entries."""
        score = float(self.score(self.labels, self.logits(method, device, precision)))
        if math.isfinite(score) and score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in method.state_dict().items()}
        return {
            "select/val_auroc": score if math.isfinite(score) else None,
            "select/best_epoch": self.best_epoch,
        }

    def restore(self, method) -> None:
        """Load the kept epoch into `method`; without a finite score the last epoch stays."""
        if self.best_state is None:
            log.warning("No epoch had a finite val score: the last epoch is kept")
            return
        method.load_state_dict(self.best_state)
        log.info("Selected epoch %d on val (AUROC %.4f)", self.best_epoch, self.best_score)

    def state(self) -> dict:
        return {
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
        }

    def load_state(self, state: dict) -> None:
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.best_state = state["best_state"]


def selected_epoch(history: list[dict]) -> int | None:
    """The epoch a run's encoder comes from: the one picked on val, else its last."""
    if not history:
        return None
    return history[-1].get("select/best_epoch") or len(history)


def selected_val_score(history: list[dict]) -> float | None:
    """The val AUROC of the selected epoch, None where the run did not select."""
    epoch = selected_epoch(history)
    return history[epoch - 1].get("select/val_auroc") if epoch else None
