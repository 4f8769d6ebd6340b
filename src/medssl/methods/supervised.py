"""Supervised baseline: the encoder and a linear head trained from scratch on the labelled subset.

The head is kept with the encoder (the `classifier` protocol scores the trained network
itself); `select_on_val` keeps the epoch with the best val AUROC, as MedMNIST v2 does.
`class_weight: balanced` weighs the loss by the labelled subset's class frequencies (as the
probes do: `medssl.evaluation.finetune_heads.balanced_weights`); a fixed weight, not a sampler,
so that an epoch sees the same images in the same order and resumes bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medssl.data.task import Task
from medssl.errors import MedsslError
from medssl.losses.class_weight import CLASS_WEIGHTS, balanced_weights
from medssl.methods.base import Method


class Supervised(Method):
    uses_labels = True

    def __init__(
        self,
        backbone: nn.Module,
        task: str,
        num_classes: int,
        *,
        label_smoothing: float,
        select_on_val: bool,
        class_weight: str | None,
        train_labels: torch.Tensor | np.ndarray,
    ) -> None:
        super().__init__(backbone)
        if class_weight not in CLASS_WEIGHTS:
            raise MedsslError(
                f"method.class_weight must be one of {CLASS_WEIGHTS}, got {class_weight!r}."
            )
        self.multilabel = task == Task.MULTILABEL
        self.head = nn.Linear(self.feature_dim, num_classes)
        self.label_smoothing = label_smoothing
        self.selects_on_val = bool(select_on_val)
        weight = None
        if class_weight == "balanced":
            weight = torch.as_tensor(
                balanced_weights(task, np.asarray(train_labels), num_classes), dtype=torch.float32
            )
        # Not in the state dict: the weights follow from the labels, which the run fixes.
        self.register_buffer("class_weight", weight, persistent=False)

    @property
    def classifier_head(self) -> nn.Module:
        return self.head

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        if labels is None:
            raise ValueError("the supervised method needs labels")
        features = torch.cat(self.encode_views(views))
        logits = self.head(features).float()
        targets = labels.repeat(len(views), *([1] * (labels.ndim - 1)))
        if self.multilabel:
            loss = F.binary_cross_entropy_with_logits(
                logits, targets.float(), pos_weight=self.class_weight
            )
        else:
            loss = F.cross_entropy(
                logits, targets, weight=self.class_weight, label_smoothing=self.label_smoothing
            )
        return {"loss": loss, "embedding": features[: len(labels)].detach()}
