"""Supervised baseline: the encoder and a linear head trained from scratch on the labelled subset.

The head is kept with the encoder (the `classifier` protocol scores the trained network
itself); `select_on_val` keeps the epoch with the best val AUROC, as MedMNIST v2 does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
    ) -> None:
        super().__init__(backbone)
        self.multilabel = task == "multilabel"
        self.head = nn.Linear(self.feature_dim, num_classes)
        self.label_smoothing = label_smoothing
        self.selects_on_val = bool(select_on_val)

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
            loss = F.binary_cross_entropy_with_logits(logits, targets.float())
        else:
            loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        return {"loss": loss, "embedding": features[: len(labels)].detach()}
