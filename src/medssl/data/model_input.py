"""The input every encoder sees: stored uint8 images scaled to a symmetric [-1, 1] range."""

from __future__ import annotations

import torch

# MedMNIST images are not ImageNet photographs; a symmetric [-1, 1] range suits them and
# any other 8-bit image without per-dataset statistics.
MEAN, STD = 0.5, 0.5


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 `(B, C, H, W)` -> normalised float, the input every encoder sees."""
    return normalize(images.float() / 255.0)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> the encoders' range."""
    return (x - MEAN) / STD
