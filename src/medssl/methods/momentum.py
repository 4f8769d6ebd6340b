"""Momentum (EMA) targets shared by BYOL, MoCo and DINO.

BYOL (Grill et al. 2020, sec. 3.2) raises the EMA rate from its base value to 1 by cosine:
    m = 1 - (1 - m_base) * (cos(pi * progress) + 1) / 2,
a schedule MoCo v3 and DINO reuse; MoCo v2 keeps m fixed (pass `cosine=False`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def momentum_at(base: float, progress: float, cosine: bool = True) -> float:
    if not 0.0 <= base <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {base}")
    if not cosine:
        return base
    progress = min(max(progress, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def frozen_copy(module: nn.Module) -> nn.Module:
    """A copy that the optimiser never sees (`requires_grad=False`), updated only by `ema_update`."""
    target = copy.deepcopy(module)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- m * target + (1 - m) * online, for the parameters. The target runs in training
    mode, so its BatchNorm statistics are its own, as in the BYOL, MoCo and DINO code."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o.detach(), 1.0 - momentum)
