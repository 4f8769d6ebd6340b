"""Triplet loss with all valid triplets of the batch (Schroff et al. 2015; "batch all" of
Hermans et al. 2017), with distances raised to a power to tune how hard triplets weigh.

Embeddings are L2-normalised and d(i, j) = ||z_i - z_j||. The valid (anchor a, positive p,
negative n) triplets, a != p, y_a == y_p and y_a != y_n, form a boolean `(batch, batch, batch)`
mask (`valid_triplets`), and
    L = mean over valid triplets of  max(0, d(a, p)^gamma - d(a, n)^gamma + margin).
That mask is the outer product positive[a, p] & negative[a, n], so the sum is taken per anchor
without materialising it: sort the anchor's negative distances once, then each positive hinges
on exactly the negatives below d(a, p)^gamma + margin, whose count and sum a binary search
and a prefix sum give. Exact (the tests compare it with the explicit mask and with a loop),
O(batch^2 log batch) time and O(batch^2) memory instead of batch^3: 512 embeddings (two views
of 256) would otherwise need half a gigabyte per (batch, batch, batch) float tensor.
gamma > 1 shrinks small distances and stretches large ones, so the hardest triplets dominate;
gamma < 1 does the opposite. A multi-label sample's class is its whole label vector.
A batch without any valid triplet gives a zero loss (still attached to the graph).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import labelled_unit_embeddings
from medssl.losses.shapes import same_label


def valid_triplets(labels: torch.Tensor) -> torch.Tensor:
    """`(batch, batch, batch)` boolean mask, True at [a, p, n] for a valid triplet."""
    same = same_label(labels)
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & not_self
    return positive[:, :, None] & ~same[:, None, :]


class TripletLoss(nn.Module):
    def __init__(self, *, margin: float, gamma: float, gather: bool) -> None:
        super().__init__()
        if margin < 0 or gamma <= 0:
            raise ValueError(f"need margin >= 0 and gamma > 0, got margin={margin}, gamma={gamma}")
        self.margin = margin
        self.gamma = gamma
        self.gather = gather

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`z`: `(batch, dim)` embeddings; `labels`: `(batch,)` classes or `(batch, n_labels)`."""
        z, labels = labelled_unit_embeddings(z, labels, self.gather)
        # Squared distances, clamped before the power: the gradient of sqrt at 0 is infinite.
        squared = 2.0 - 2.0 * z @ z.T  # ||a - b||^2 of unit vectors, without a (B, B, dim) tensor
        distance = squared.clamp_min(1e-12).pow(self.gamma / 2)
        same = same_label(labels)
        positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        negative = ~same
        n_triplets = (positive.sum(dim=1) * negative.sum(dim=1)).sum()
        if n_triplets == 0:
            return z.sum() * 0.0
        # Per anchor: negatives' distances ascending (non-negatives last, as +inf), prefix sums.
        negatives = torch.where(negative, distance, torch.inf).sort(dim=1).values
        prefix = F.pad(torch.where(negatives.isinf(), 0.0, negatives).cumsum(dim=1), (1, 0))
        threshold = distance + self.margin  # a positive at d hinges on negatives below d + margin
        below = torch.searchsorted(negatives, threshold.detach())
        hinge = below * threshold - prefix.gather(1, below)
        return hinge[positive].sum() / n_triplets
