"""BYOL (Grill et al., NeurIPS 2020): an online network (encoder, projector, predictor) regresses
the projection of the other view made by a target network, an EMA of the online one whose rate
rises from `base_momentum` to 1 by cosine over training. The loss is symmetrised (eq. 3)."""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.byol import BYOLLoss
from medssl.methods.base import Method
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.models.heads import MLPHead


class BYOL(Method):
    def __init__(
        self,
        backbone: nn.Module,
        loss: BYOLLoss,
        proj_hidden_dim: int = 4096,
        proj_dim: int = 256,
        pred_hidden_dim: int = 4096,
        base_momentum: float = 0.996,
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(self.feature_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.predictor = MLPHead(proj_dim, pred_hidden_dim, proj_dim, num_layers=2)
        self.target_backbone = frozen_copy(backbone)
        self.target_projector = frozen_copy(self.projector)
        self.loss = loss
        self.base_momentum = base_momentum
        momentum_at(base_momentum, 0.0)  # validates

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        x = torch.cat(views[:2])
        h = self.backbone(x)
        p_a, p_b = self.predictor(self.projector(h)).chunk(2)
        with torch.no_grad():
            t_a, t_b = self.target_projector(self.target_backbone(x)).chunk(2)
        loss = self.loss(p_a, t_b) + self.loss(p_b, t_a)
        return {"loss": loss, "embedding": h[: len(views[0])].detach()}

    def on_step_end(self, progress: float) -> None:
        m = momentum_at(self.base_momentum, progress)
        ema_update(self.target_backbone, self.backbone, m)
        ema_update(self.target_projector, self.projector, m)
