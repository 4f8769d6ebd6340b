"""MoCo v3 (Chen, Xie, He, ICCV 2021): a projector and predictor on the query side, a momentum
encoder (backbone + projector) for keys, and a symmetric InfoNCE with the other keys of the
batch as negatives, no queue. The momentum rises from 0.99 to 1 by cosine; each InfoNCE term
is scaled by 2 * temperature, as in the paper's Algorithm 1."""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.infonce import InfoNCELoss
from medssl.methods.base import Method
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.models.heads import MLPHead


class MoCoV3(Method):
    def __init__(
        self,
        backbone: nn.Module,
        loss: InfoNCELoss,
        proj_hidden_dim: int = 4096,
        proj_dim: int = 256,
        pred_hidden_dim: int = 4096,
        base_momentum: float = 0.99,
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(
            self.feature_dim, proj_hidden_dim, proj_dim, num_layers=3, last_bn=True
        )
        self.predictor = MLPHead(proj_dim, pred_hidden_dim, proj_dim, num_layers=2, last_bn=True)
        self.momentum_backbone = frozen_copy(backbone)
        self.momentum_projector = frozen_copy(self.projector)
        self.loss = loss
        self.base_momentum = base_momentum
        momentum_at(base_momentum, 0.0)  # validates

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        x = torch.cat(views[:2])
        h = self.backbone(x)
        q_a, q_b = self.predictor(self.projector(h)).chunk(2)
        with torch.no_grad():
            k_a, k_b = self.momentum_projector(self.momentum_backbone(x)).chunk(2)
        scale = 2 * self.loss.temperature
        loss = scale * (self.loss(q_a, k_b) + self.loss(q_b, k_a))
        return {"loss": loss, "embedding": h[: len(views[0])].detach()}

    def on_step_end(self, progress: float) -> None:
        m = momentum_at(self.base_momentum, progress)
        ema_update(self.momentum_backbone, self.backbone, m)
        ema_update(self.momentum_projector, self.projector, m)
