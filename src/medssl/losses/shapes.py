"""Input checks shared by the losses: say what was expected and what came."""

from __future__ import annotations

import torch


def positive_temperature(temperature: float) -> float:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return temperature


def check_pair(z_a: torch.Tensor, z_b: torch.Tensor, min_batch: int = 2) -> None:
    if z_a.ndim != 2 or z_b.ndim != 2:
        raise ValueError(
            f"expected two (batch, dim) embeddings, got shapes {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape != z_b.shape:
        raise ValueError(
            f"the two views' embeddings differ in shape: {tuple(z_a.shape)} vs {tuple(z_b.shape)}"
        )
    if z_a.shape[0] < min_batch:
        raise ValueError(f"need a batch of at least {min_batch}, got {z_a.shape[0]}")


def check_labelled(z: torch.Tensor, labels: torch.Tensor) -> None:
    """`z` `(batch, dim)` with `labels` `(batch,)` class indices or `(batch, n_labels)` vectors."""
    if z.ndim != 2:
        raise ValueError(f"expected (batch, dim) embeddings, got shape {tuple(z.shape)}")
    if labels.ndim not in (1, 2) or labels.shape[0] != z.shape[0]:
        raise ValueError(
            f"expected labels of shape ({z.shape[0]},) or ({z.shape[0]}, n_labels) for embeddings "
            f"{tuple(z.shape)}, got {tuple(labels.shape)}"
        )
    if z.shape[0] < 2:
        raise ValueError(f"need a batch of at least 2, got {z.shape[0]}")


def same_label(labels: torch.Tensor) -> torch.Tensor:
    """`(batch, batch)` boolean: True where two samples share a class (or a whole label vector)."""
    if labels.ndim == 1:
        return labels[:, None] == labels[None, :]
    return (labels[:, None, :] == labels[None, :, :]).all(dim=-1)
