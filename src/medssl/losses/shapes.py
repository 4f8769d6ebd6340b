"""Input checks shared by the losses: say what was expected and what came."""

from __future__ import annotations

import torch


def check_pair(z_a: torch.Tensor, z_b: torch.Tensor, min_batch: int = 2) -> None:
    if z_a.ndim != 2 or z_b.ndim != 2:
        raise ValueError(
            f"expected two (batch, dim) embeddings, got shapes {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape != z_b.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {tuple(z_a.shape)} vs {tuple(z_b.shape)}")
    if z_a.shape[0] < min_batch:
        raise ValueError(f"need a batch of at least {min_batch}, got {z_a.shape[0]}")
