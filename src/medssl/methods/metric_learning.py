"""What the triplet and SupCon methods share: supervised metric learning during pretraining, on
the labelled subset. Every view of an image is a sample with that image's label; a 2-layer
projector maps the features of all views to embeddings, and the loss compares them by label."""

from __future__ import annotations

import torch
from torch import nn

from medssl.methods.base import Method
from medssl.models.heads import MLPHead


class MetricLearningMethod(Method):
    uses_labels = True

    def __init__(
        self, backbone: nn.Module, loss: nn.Module, *, proj_hidden_dim: int, proj_dim: int
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(self.feature_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.loss = loss

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        if labels is None:
            raise ValueError(f"{type(self).__name__} needs labels")
        features = torch.cat(self.encode_views(views))
        z = self.projector(features)
        targets = labels.repeat(len(views), *([1] * (labels.ndim - 1)))
        return {"loss": self.loss(z, targets), "embedding": features[: len(labels)].detach()}
