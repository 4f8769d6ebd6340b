"""BYOL (Grill et al., NeurIPS 2020): an online network (encoder, projector, predictor) regresses
the projection of the other view made by a target network, an EMA of the online one whose rate
rises from `base_momentum` to 1 by cosine over training. The loss is symmetrised (eq. 3)."""

from __future__ import annotations

from torch import nn

from medssl.losses.byol import BYOLLoss
from medssl.methods.online_target import OnlineTargetMethod
from medssl.models.backbone import feature_dim
from medssl.models.heads import MLPHead


class BYOL(OnlineTargetMethod):
    def __init__(
        self,
        backbone: nn.Module,
        loss: BYOLLoss,
        *,
        proj_hidden_dim: int,
        proj_dim: int,
        pred_hidden_dim: int,
        base_momentum: float,
    ) -> None:
        super().__init__(
            backbone,
            projector=MLPHead(feature_dim(backbone), proj_hidden_dim, proj_dim, num_layers=2),
            predictor=MLPHead(proj_dim, pred_hidden_dim, proj_dim, num_layers=2),
            loss=loss,
            base_momentum=base_momentum,
        )
