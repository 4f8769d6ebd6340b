"""The input every encoder sees: stored images mapped to [0, 1], then to a symmetric [-1, 1].

Stored pixels are uint8 or uint16 (`image_store`); `to_unit` maps a batch on the device with the
dataset's `IntensityMapping` (`dataset.intensity`), or, without one, by the dtype's full range
(x / 255, x / 65535), which is what every 8-bit dataset has always used. An encoder with
pretrained weights maps this input on to the one its weights expect (`pretrained_input`).
"""

from __future__ import annotations

import torch

from medssl.data.intensity import IntensityMapping

# MedMNIST images are not ImageNet photographs; a symmetric [-1, 1] range suits them and
# any other 8-bit image without per-dataset statistics.
MEAN, STD = 0.5, 0.5


def to_unit(images: torch.Tensor, intensity: IntensityMapping | None = None) -> torch.Tensor:
    """Stored `(B, C, H, W)` -> float in [0, 1] on the same device; float input passes."""
    if images.is_floating_point():
        return images
    if intensity is not None:
        return intensity(images)
    full = 255.0 if images.dtype == torch.uint8 else 65535.0
    return images.float().div_(full)


def to_model_input(images: torch.Tensor, intensity: IntensityMapping | None = None) -> torch.Tensor:
    """Stored `(B, C, H, W)` -> normalised float, the input every encoder sees."""
    return normalize(to_unit(images, intensity))


def normalize(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> the encoders' range."""
    return (x - MEAN) / STD


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """The encoders' range -> [0, 1]; `pretrained_input` starts from it to reach the input that
    pretrained weights expect (their size, channels, mean and std)."""
    return x * STD + MEAN
