"""BYOL's regression loss (Grill et al., NeurIPS 2020), eq. (2):

    L(p, z) = || p/||p|| - z/||z|| ||^2 = 2 - 2 cos(p, z),
averaged over the batch; `z` comes from the target network and gets no gradient. The method
symmetrises it by swapping the views (eq. 3: L + L~).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.shapes import check_pair


class BYOLLoss(nn.Module):
    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`prediction` `(batch, dim)` of the online network, `target` `(batch, dim)` of the target."""
        check_pair(prediction, target, min_batch=1)
        p = F.normalize(prediction.float(), dim=1)
        z = F.normalize(target.detach().float(), dim=1)
        return (2 - 2 * (p * z).sum(dim=1)).mean()
