"""What SimCLR, VICReg, Barlow Twins and SiCoVa share: two views through the backbone in one
pass, one MLP projector on both, and a loss of the two `(batch, dim)` projections.

A method is this with its projector depth and its loss. A loss made of named terms
(`terms(z_a, z_b) -> dict` and `combine(terms)`: VICReg, Barlow Twins, SiCoVa) also reports
each unweighted term as `loss/<name>`; a plain loss (NT-Xent) only its value."""

from __future__ import annotations

import torch
from torch import nn

from medssl.methods.base import Method
from medssl.models.heads import MLPHead


def loss_outputs(loss: nn.Module, z_a: torch.Tensor, z_b: torch.Tensor) -> dict:
    """`loss` of the two projections and, for a loss of named terms, each term detached."""
    if not hasattr(loss, "terms"):
        return {"loss": loss(z_a, z_b)}
    terms = loss.terms(z_a, z_b)
    out = {f"loss/{name}": value.detach() for name, value in terms.items()}
    out["loss"] = loss.combine(terms)
    return out


class TwoViewMethod(Method):
    projector_layers = 2

    def __init__(
        self, backbone: nn.Module, loss: nn.Module, *, proj_hidden_dim: int, proj_dim: int
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(
            self.feature_dim, proj_hidden_dim, proj_dim, num_layers=self.projector_layers
        )
        self.loss = loss

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        h_a, h_b = self.encode_views(views[:2])  # one BatchNorm batch of both views
        z_a, z_b = self.projector(torch.cat([h_a, h_b])).chunk(2)
        return {**loss_outputs(self.loss, z_a, z_b), "embedding": h_a.detach()}
