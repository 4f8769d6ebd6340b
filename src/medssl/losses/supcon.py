"""Supervised contrastive loss (Khosla et al., NeurIPS 2020), eq. (2), L^sup_out:

    L = mean over anchors i of  -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{a != i} exp(z_i.z_a/t) )
over L2-normalised embeddings of all views, where P(i) are the other samples (views included)
sharing i's label. Anchors without any positive are left out. A multi-label sample's class
is its whole label vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import gather as gather_all
from medssl.losses.gather import gather_no_grad
from medssl.losses.shapes import check_labelled, same_label


class SupConLoss(nn.Module):
    def __init__(self, temperature: float = 0.1, gather: bool = True) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature
        self.gather = gather

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`z`: `(batch, dim)` embeddings of all views stacked; `labels`: their labels."""
        check_labelled(z, labels)
        if self.gather:
            z, labels = gather_all(z), gather_no_grad(labels)
        z = F.normalize(z.float(), dim=1)
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
