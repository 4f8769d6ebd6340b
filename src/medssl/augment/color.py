"""Photometric jitter as broadcast arithmetic on the batch; grayscale conversion."""

from __future__ import annotations

import torch

from medssl.augment.base import BatchTransform, uniform

_LUMA = (0.299, 0.587, 0.114)


def luminance(x: torch.Tensor) -> torch.Tensor:
    """`(B, 1, H, W)` luma for 3-channel input; 1-channel input is its own luminance."""
    if x.shape[1] == 1:
        return x
    weights = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _factors(strength: float, b: int, generator, device) -> torch.Tensor:
    return uniform(b, max(0.0, 1 - strength), 1 + strength, generator, device).view(-1, 1, 1, 1)


def _rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    # Rotate chroma in YIQ space: a hue shift without the branches of an HSV round trip.
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    angle = 2 * torch.pi * turns.view(-1, 1, 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)


class ColorJitter(BatchTransform):
    """Brightness, contrast, saturation and hue jitter; saturation and hue act on 3-channel
    images only. Strengths follow torchvision: a factor drawn from [1 - s, 1 + s], hue in
    [-h, h] turns."""

    def __init__(
        self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.2, hue: float = 0.1, p: float = 0.8
    ) -> None:
        super().__init__(p)
        self.brightness, self.contrast = brightness, contrast
        self.saturation, self.hue = saturation, hue

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, dev = len(x), x.device
        if self.brightness:
            x = x * _factors(self.brightness, b, generator, dev)
        if self.contrast:
            mean = luminance(x).mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * _factors(self.contrast, b, generator, dev) + mean
        if x.shape[1] == 3 and self.saturation:
            gray = luminance(x)
            x = (x - gray) * _factors(self.saturation, b, generator, dev) + gray
        if x.shape[1] == 3 and self.hue:
            x = _rotate_hue(x.clamp(0, 1), uniform(b, -self.hue, self.hue, generator, dev))
        return x.clamp(0, 1)


class Grayscale(BatchTransform):
    """Replace a colour image by its luminance on all channels (no-op for 1 channel)."""

    def __init__(self, p: float = 0.2) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return luminance(x).expand_as(x)
