"""MoCo v3 (Chen, Xie, He, ICCV 2021): a projector and predictor on the query side, a momentum
encoder (backbone + projector) for keys, and a symmetric InfoNCE with the other keys of the
batch as negatives, no queue. The momentum rises from `base_momentum` (0.99 in the paper) to 1
by cosine; each InfoNCE term is scaled by 2 * temperature, as in the paper's Algorithm 1."""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.infonce import InfoNCELoss
from medssl.methods.online_target import OnlineTargetMethod
from medssl.models.backbone import feature_dim
from medssl.models.heads import MLPHead


class MoCoV3(OnlineTargetMethod):
    def __init__(
        self,
        backbone: nn.Module,
        loss: InfoNCELoss,
        *,
        proj_hidden_dim: int,
        proj_dim: int,
        pred_hidden_dim: int,
        base_momentum: float,
    ) -> None:
        super().__init__(
            backbone,
            projector=MLPHead(
                feature_dim(backbone), proj_hidden_dim, proj_dim, num_layers=3, last_bn=True
            ),
            predictor=MLPHead(proj_dim, pred_hidden_dim, proj_dim, num_layers=2, last_bn=True),
            loss=loss,
            base_momentum=base_momentum,
        )

    def pair_loss(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return 2 * self.loss.temperature * self.loss(queries, keys)
