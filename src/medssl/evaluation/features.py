"""Frozen-encoder features: BatchNorm in eval mode, no gradients, batched on the device."""

from __future__ import annotations

import torch
from torch import nn

from medssl.augment.pipeline import to_model_input
from medssl.training.device import autocast


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 512,
) -> torch.Tensor:
    """`(N, num_features)` float32 features on the CPU for uint8 `(N, C, H, W)` images."""
    was_training = encoder.training
    encoder.eval()
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = to_model_input(images[start : start + batch_size].to(device, non_blocking=True))
        with autocast(device, precision):
            chunks.append(encoder(batch).float().cpu())
    encoder.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0)
