"""InfoNCE of MoCo (He et al., CVPR 2020, eq. 1) and MoCo v3 (Chen, Xie, He, ICCV 2021).

    L_q = -log exp(q.k+ / t) / sum_k exp(q.k / t)
over L2-normalised queries `q` and keys `k`. With a `queue` `(size, dim)` of earlier keys
(MoCo v1/v2) the negatives are the queue and each query's positive is its own key. Without
one (MoCo v3) the keys of the other images in the batch are the negatives; `gather=True`
takes them from every DDP process, as MoCo v3 does. Keys never get gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import gather_no_grad, rank
from medssl.losses.shapes import check_pair, positive_temperature


class InfoNCELoss(nn.Module):
    def __init__(self, *, temperature: float, gather: bool) -> None:
        super().__init__()
        self.temperature = positive_temperature(temperature)
        self.gather = gather

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`q`, `k`: `(batch, dim)` queries and their positive keys; `queue`: `(size, dim)` or None."""
        check_pair(q, k, min_batch=1 if queue is not None else 2)
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(k.detach().float(), dim=1)
        if queue is not None:
            if queue.ndim != 2 or queue.shape[1] != q.shape[1]:
                raise ValueError(
                    f"expected a ({q.shape[1]}-dim) queue of shape (size, {q.shape[1]}), got {tuple(queue.shape)}"
                )
            positive = (q * k).sum(dim=1, keepdim=True)
            negative = q @ F.normalize(queue.detach().float(), dim=1).T
            logits = torch.cat([positive, negative], dim=1) / self.temperature
            target = torch.zeros(len(q), dtype=torch.long, device=q.device)
        else:
            offset = rank() * len(q) if self.gather else 0
            keys = gather_no_grad(k) if self.gather else k
            logits = q @ keys.T / self.temperature
            target = torch.arange(len(q), device=q.device) + offset
        return F.cross_entropy(logits, target)
