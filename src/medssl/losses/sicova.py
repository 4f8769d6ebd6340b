"""SiCoVa: VICReg plus a cross-view correlation term, proposed for retinal images.

    l = VICReg(Z, Z') + w_corr * [ sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2 ] / d
where C is the Barlow Twins cross-correlation matrix of the two views' batch-standardised
embeddings (see `barlow.py`). VICReg's covariance term decorrelates dimensions *within* a view;
this term also pushes corresponding dimensions of the two views to correlate perfectly and
different ones not at all. It is divided by d so that its scale matches VICReg's terms, which
are all per-dimension means, and `correlation_weight` stays meaningful across projector widths.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.barlow import cross_correlation, redundancy_terms
from medssl.losses.gather import gather as gather_all
from medssl.losses.shapes import check_pair
from medssl.losses.vicreg import VICRegLoss


class SiCoVaLoss(nn.Module):
    def __init__(
        self,
        *,
        invariance_weight: float,
        variance_weight: float,
        covariance_weight: float,
        correlation_weight: float,
        off_diagonal_weight: float,
        gamma: float,
        eps: float,
        gather: bool,
    ) -> None:
        super().__init__()
        self.vicreg = VICRegLoss(
            invariance_weight=invariance_weight,
            variance_weight=variance_weight,
            covariance_weight=covariance_weight,
            gamma=gamma,
            eps=eps,
            gather=False,
        )
        self.correlation_weight = correlation_weight
        self.off_diagonal_weight = off_diagonal_weight
        self.gather = gather

    def terms(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """VICReg's three unweighted terms and the scaled correlation term, for logging."""
        check_pair(z_a, z_b)
        if self.gather:  # every term is a statistic of the global batch: gather once
            z_a, z_b = gather_all(z_a), gather_all(z_b)
        terms = self.vicreg.terms(z_a, z_b)  # its own gather is off: z is gathered already
        on, off = redundancy_terms(cross_correlation(z_a.float(), z_b.float()))
        terms["correlation"] = (on + self.off_diagonal_weight * off) / z_a.shape[1]
        return terms

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.vicreg.combine(terms) + self.correlation_weight * terms["correlation"]

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """`z_a`, `z_b`: `(batch, dim)` expander outputs of two views."""
        return self.combine(self.terms(z_a, z_b))
