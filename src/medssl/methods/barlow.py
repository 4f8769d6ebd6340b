"""Barlow Twins (Zbontar et al., ICML 2021): a 3-layer projector and the redundancy-reduction
loss on two views. Architecturally VICReg's twin (backbone, expander, a loss of named terms)."""

from __future__ import annotations

from torch import nn

from medssl.losses.barlow import BarlowTwinsLoss
from medssl.methods.vicreg import VICReg


class BarlowTwins(VICReg):
    def __init__(
        self,
        backbone: nn.Module,
        loss: BarlowTwinsLoss,
        proj_hidden_dim: int = 2048,
        proj_dim: int = 2048,
    ) -> None:
        super().__init__(backbone, loss, proj_hidden_dim, proj_dim)
