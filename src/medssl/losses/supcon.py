"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), eq. (2), L^sup_out:

    L = mean over anchors i of  -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t) )
over L2-normalised embeddings of all views, where P(i) are the other samples (views included)
sharing i's label. Anchors without any positive are left out. A multi-label sample's class
is its whole label vector.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.gather import labelled_unit_embeddings
from medssl.losses.shapes import positive_temperature, same_label


class SupConLoss(nn.Module):
    def __init__(self, *, temperature: float, gather: bool) -> None:
        super().__init__()
        self.temperature = positive_temperature(temperature)
        self.gather = gather

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`z`: `(batch, dim)` embeddings of all views stacked; `labels`: their labels."""
        z, labels = labelled_unit_embeddings(z, labels, self.gather)
        self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = (z @ z.T / self.temperature).masked_fill(self_mask, float("-inf"))
        log_prob = (logits - torch.logsumexp(logits, dim=1, keepdim=True)).masked_fill(
            self_mask, 0.0
        )
        positives = same_label(labels) & ~self_mask
        count = positives.sum(dim=1)
        has_positive = count > 0
        if not has_positive.any():
            return z.sum() * 0.0
        per_anchor = -(log_prob * positives).sum(dim=1)[has_positive] / count[has_positive]
        return per_anchor.mean()
