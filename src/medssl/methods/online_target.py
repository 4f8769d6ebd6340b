"""The online/target skeleton BYOL and MoCo v3 share: an online encoder + projector + predictor,
a target (momentum) copy of encoder + projector that only `ema_update` moves, its rate rising
from `base_momentum` to 1 by cosine, and a loss on each view's prediction against the other
view's target, symmetrised. A method is this with its projector depth, whether its heads end in
an affine-free BatchNorm, and its `pair_loss`."""

from __future__ import annotations

import torch
from torch import nn

from medssl.methods.base import Method
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.models.heads import MLPHead


class OnlineTargetMethod(Method):
    projector_layers = 2
    last_bn = False  # after the projector's and the predictor's output layer

    def __init__(
        self,
        backbone: nn.Module,
        loss: nn.Module,
        *,
        proj_hidden_dim: int,
        proj_dim: int,
        pred_hidden_dim: int,
        base_momentum: float,
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(
            self.feature_dim,
            proj_hidden_dim,
            proj_dim,
            num_layers=self.projector_layers,
            last_bn=self.last_bn,
        )
        self.predictor = MLPHead(
            proj_dim, pred_hidden_dim, proj_dim, num_layers=2, last_bn=self.last_bn
        )
        self.target_backbone = frozen_copy(backbone)
        self.target_projector = frozen_copy(self.projector)
        self.loss = loss
        momentum_at(base_momentum, 0.0)  # validates
        self.base_momentum = base_momentum

    def pair_loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(prediction, target)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        x = torch.cat(views[:2])  # both views in one pass: one BatchNorm batch, as the papers
        h = self.backbone(x)
        p_a, p_b = self.predictor(self.projector(h)).chunk(2)
        with torch.no_grad():
            t_a, t_b = self.target_projector(self.target_backbone(x)).chunk(2)
        loss = self.pair_loss(p_a, t_b) + self.pair_loss(p_b, t_a)
        return {"loss": loss, "embedding": h[: len(views[0])].detach()}

    def on_step_end(self, progress: float) -> None:
        m = momentum_at(self.base_momentum, progress)
        ema_update(self.target_backbone, self.backbone, m)
        ema_update(self.target_projector, self.projector, m)
