"""Frozen-encoder features: BatchNorm in eval mode, no gradients, batched on the device.

The one feature extractor: every evaluation protocol reads its features through it, and so
does the online probe while pretraining runs (hence here, below `evaluation/`).
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.data.intensity import IntensityMapping
from medssl.data.model_input import to_model_input
from medssl.training.device import autocast
from medssl.training.speed import batch_in_memory_format


@torch.no_grad()
def extract_features(
    encoder: nn.Module,
    images: torch.Tensor,
    *,
    device: torch.device,
    precision: str = "fp32",
    batch_size: int = 512,
    out_device: torch.device | str = "cpu",
    intensity: IntensityMapping | None = None,
    memory_format: torch.memory_format | None = None,
) -> torch.Tensor:
    """`(N, num_features)` float32 features of stored `(N, C, H, W)` images (mapped to the
    model input with `intensity`, the dataset's; None: by the dtype's range), on `out_device`
    (the CPU for the protocols, the training device for the online probe). The encoder runs in
    eval mode and is left in the mode it was found in, under autocast in `precision` (the
    resolved `trainer.precision`), on batches in `memory_format` (channels-last where
    `SpeedOptions` put the encoder in it; None: as they come)."""
    was_training = encoder.training
    encoder.eval()
    chunks = []
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            batch = batch_in_memory_format(to_model_input(batch, intensity), memory_format)
            with autocast(device, precision):
                chunks.append(encoder(batch).float().to(out_device))
    finally:
        encoder.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, device=out_device)
