"""SimCLR (Chen et al., ICML 2020): a projection head and NT-Xent on two views."""

from __future__ import annotations

import torch
from torch import nn

from medssl.methods.base import Method
from medssl.models.heads import MLPHead


class SimCLR(Method):
    def __init__(
        self, backbone: nn.Module, loss: nn.Module, proj_hidden_dim: int = 512, proj_dim: int = 128
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(self.feature_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.loss = loss

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        h_a, h_b = self.encode_views(views[:2])
        z_a, z_b = self.projector(torch.cat([h_a, h_b])).chunk(2)
        return {"loss": self.loss(z_a, z_b), "embedding": h_a.detach()}
