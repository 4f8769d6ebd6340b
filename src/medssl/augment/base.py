"""The shape every augmentation takes: a module on a float batch `(B, C, H, W)` in [0, 1].

Randomness is per sample and drawn from the `torch.Generator` passed in, so the same seed gives
the same views on the same device. A transform with probability `p` is computed for the whole
batch and kept where a per-sample coin says so: one branch-free kernel beats B small ones.
"""

from __future__ import annotations

import torch
from torch import nn


def uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def coin(n: int, p: float, generator: torch.Generator, device) -> torch.Tensor:
    """A boolean per sample, True with probability `p`."""
    return torch.rand(n, generator=generator, device=device) < p


class BatchTransform(nn.Module):
    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p}")
        self.p = p

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.p == 0.0:
            return x
        out = self.transform(x, generator)
        if self.p == 1.0:
            return out
        keep = coin(len(x), self.p, generator, x.device).view(-1, 1, 1, 1)
        return torch.where(keep, out, x)
