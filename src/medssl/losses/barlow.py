"""Barlow Twins: redundancy reduction (Zbontar, Jing, Misra, LeCun, Deny, ICML 2021).

Eq. (1)-(2) of the paper: each embedding dimension is standardised over the batch, the
`(dim, dim)` cross-correlation matrix of the two views is
    C_ij = sum_b za_bi zb_bj / N,
and the loss is  sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2.
Standardisation uses the biased (1/N) variance, as the authors' code does with an affine-free
BatchNorm, so that C is a true correlation matrix and identical views give C_ii = 1 (the
paper's Algorithm 1 writes `z.std(0)`, whose unbiased variance would give (N-1)/N). `eps` under
the square root keeps a dead dimension from dividing by zero.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.gather import gather as gather_all
from medssl.losses.shapes import check_pair


def standardise(z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def cross_correlation(z_a: torch.Tensor, z_b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """`(dim, dim)` cross-correlation of two `(batch, dim)` embeddings, standardised per dimension."""
    return standardise(z_a, eps).T @ standardise(z_b, eps) / z_a.shape[0]


def redundancy_terms(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_i (1 - C_ii)^2, sum_{i != j} C_ij^2) of a square correlation matrix."""
    diagonal = torch.diagonal(c)
    on = (1 - diagonal).pow(2).sum()
    off = c.pow(2).sum() - diagonal.pow(2).sum()
    return on, off


class BarlowTwinsLoss(nn.Module):
    def __init__(self, *, off_diagonal_weight: float, eps: float, gather: bool) -> None:
        super().__init__()
        if off_diagonal_weight < 0:
            raise ValueError(f"off_diagonal_weight must be non-negative, got {off_diagonal_weight}")
        self.off_diagonal_weight = off_diagonal_weight
        self.eps = eps
        self.gather = gather

    def terms(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(z_a, z_b)
        if self.gather:  # the correlation is a statistic of the global batch
            z_a, z_b = gather_all(z_a), gather_all(z_b)
        on, off = redundancy_terms(cross_correlation(z_a.float(), z_b.float(), self.eps))
        return {"invariance": on, "redundancy": off}

    def combine(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return terms["invariance"] + self.off_diagonal_weight * terms["redundancy"]

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """`z_a`, `z_b`: `(batch, dim)` projector outputs of two views."""
        return self.combine(self.terms(z_a, z_b))
