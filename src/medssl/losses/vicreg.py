"""VICReg: variance-invariance-covariance regularisation (Bardes, Ponce, LeCun, ICLR 2022).

Eq. (1) of the paper:  l = lambda * s(Z, Z') + mu * [v(Z) + v(Z')] + nu * [c(Z) + c(Z')]
  s: mean squared distance between paired embeddings (the paper's Algorithm 1 averages over
     the dimensions too, which is what its coefficients 25/25/1 were tuned with);
  v(Z) = 1/d * sum_j max(0, gamma - sqrt(Var(z_j) + eps));
  c(Z) = 1/d * sum_{i != j} Cov(Z)_ij^2, with the unbiased covariance.
The variance term is the paper's sum over the two branches; FAIR's released code halves it
(facebookresearch/vicreg issue #8), which this module does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import gather as gather_all
from medssl.losses.shapes import check_pair


def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = (z.T @ z) / (n - 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d


class VICRegLoss(nn.Module):
    def __init__(
        self,
        *,
        invariance_weight: float,
        variance_weight: float,
        covariance_weight: float,
        gamma: float,
        eps: float,
        gather: bool,
    ) -> None:
        super().__init__()
        self.gather = gather
        self.invariance_weight = invariance_weight
        self.variance_weight = variance_weight
        self.covariance_weight = covariance_weight
        self.gamma = gamma
        self.eps = eps

    def terms(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The three unweighted terms, for logging."""
        check_pair(z_a, z_b)
        if self.gather:  # variance and covariance over the global batch
            z_a, z_b = gather_all(z_a), gather_all(z_b)
        z_a, z_b = z_a.float(), z_b.float()
        return {
            "invariance": F.mse_loss(z_a, z_b),
            "variance": variance_term(z_a, self.gamma, self.eps)
            + variance_term(z_b, self.gamma, self.eps),
            "covariance": covariance_term(z_a) + covariance_term(z_b),
        }

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return (
            self.invariance_weight * terms["invariance"]
            + self.variance_weight * terms["variance"]
            + self.covariance_weight * terms["covariance"]
        )

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """`z_a`, `z_b`: `(batch, dim)` expander outputs of two views."""
        return self.combine(self.terms(z_a, z_b))
