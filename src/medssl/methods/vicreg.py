"""VICReg (Bardes et al., ICLR 2022): an expander MLP and the VICReg loss on two views."""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.vicreg import VICRegLoss
from medssl.methods.base import Method
from medssl.models.heads import MLPHead


class VICReg(Method):
    def __init__(
        self,
        backbone: nn.Module,
        loss: VICRegLoss,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 2048,
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(self.feature_dim, proj_hidden_dim, proj_dim, num_layers=3)
        self.loss = loss

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        h_a, h_b = self.encode_views(views[:2])
        z_a, z_b = self.projector(torch.cat([h_a, h_b])).chunk(2)
        terms = self.loss.terms(z_a, z_b)
        out = {f"loss/{name}": value.detach() for name, value in terms.items()}
        out["loss"] = self.loss.combine(terms)
        out["embedding"] = h_a.detach()
        return out
