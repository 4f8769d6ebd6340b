"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al., ICML 2020).

For 2B embeddings of B images (two views each), every embedding must pick its partner view out
of the 2B - 1 others by cosine similarity / temperature. The loss averages over all 2B anchors. With `gather=True` the embeddings of every DDP process
join the batch, so the negatives are the global batch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import gather as gather_all
from medssl.losses.shapes import check_pair, positive_temperature


class NTXentLoss(nn.Module):
    def __init__(self, *, temperature: float, gather: bool) -> None:
        super().__init__()
        self.temperature = positive_temperature(temperature)
        self.gather = gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """`z_a`, `z_b`: `(batch, dim)` projections of two views of the same images."""
        check_pair(z_a, z_b)
        if self.gather:
            z_a, z_b = gather_all(z_a), gather_all(z_b)
        batch = z_a.shape[0]
        z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
        logits = z @ z.T / self.temperature
        logits.fill_diagonal_(float("-inf"))  # an embedding is not its own positive
        partner = torch.arange(2 * batch, device=z.device).roll(batch)
        return F.cross_entropy(logits, partner)
