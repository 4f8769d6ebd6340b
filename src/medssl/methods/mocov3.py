"""MoCo v3 (Chen, Xie, He, ICCV 2021): a 3-layer projector and a 2-layer predictor on the
query side, a momentum encoder (backbone + projector) for keys, and a symmetric InfoNCE with
the other keys of the batch as negatives, no queue. The momentum rises from `base_momentum`
(0.99 in the paper) to 1 by cosine; each InfoNCE term is scaled by 2 * temperature, as in the
paper's Algorithm 1."""

from __future__ import annotations

import torch

from medssl.methods.online_target import OnlineTargetMethod


class MoCoV3(OnlineTargetMethod):
    """The loss is an `InfoNCELoss` without a queue."""

    projector_layers = 3
    last_bn = True  # the paper's heads end in BatchNorm

    def pair_loss(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return 2 * self.loss.temperature * self.loss(queries, keys)
