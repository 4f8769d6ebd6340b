"""Photometric augmentations as broadcast arithmetic on the batch.

Strengths follow torchvision: a brightness/contrast/saturation factor is drawn from
[1 - s, 1 + s], hue from [-h, h] turns. Unlike torchvision the four jitters run in a fixed order
(brightness, contrast, saturation, hue), which keeps the batch free of per-sample branches.
"""

from __future__ import annotations

import math

import torch

from medssl.augment.base import BatchTransform, uniform

_LUMA = (0.299, 0.587, 0.114)
_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def luminance(x: torch.Tensor) -> torch.Tensor:
    """`(B, 1, H, W)` luma for 3-channel input; 1-channel input is its own luminance."""
    if x.shape[1] == 1:
        return x
    weights = x.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _factors(strength: float, b: int, generator, device) -> torch.Tensor:
    return uniform(b, max(0.0, 1 - strength), 1 + strength, generator, device).view(-1, 1, 1, 1)


def rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate chroma in YIQ space by `turns` (per sample): a hue shift without the branches of
    an HSV round trip. Luma is unchanged."""
    to_yiq = x.new_tensor(_TO_YIQ)
    angle = 2 * math.pi * turns
    cos, sin = torch.cos(angle), torch.sin(angle)
    ones, zeros = torch.ones_like(cos), torch.zeros_like(cos)
    rotation = torch.stack([ones, zeros, zeros, zeros, cos, -sin, zeros, sin, cos], dim=1).view(
        -1, 3, 3
    )
    # One 3x3 colour matrix per sample: YIQ -> rotate -> RGB.
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return (matrix @ x.flatten(2)).view_as(x)


class ColorJitter(BatchTransform):
    """Brightness, contrast, saturation and hue jitter; saturation and hue act on 3-channel
    images only (a grayscale scan has no hue). All strengths 0 is the identity."""

    def __init__(
        self, *, brightness: float, contrast: float, saturation: float, hue: float, p: float
    ) -> None:
        super().__init__(p)
        self.brightness, self.contrast = brightness, contrast
        self.saturation, self.hue = saturation, hue

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, dev = len(x), x.device
        # Blends are written as x * f + g * (1 - f) (one addcmul), clamped in place: the batch
        # is read and written as few times as possible. `x` itself is never modified.
        if self.brightness:
            x = (x * _factors(self.brightness, b, generator, dev)).clamp_(0, 1)
        if self.contrast:
            factor = _factors(self.contrast, b, generator, dev)
            mean = luminance(x).mean(dim=(1, 2, 3), keepdim=True)
            x = torch.addcmul(mean * (1 - factor), x, factor).clamp_(0, 1)
        if x.shape[1] == 3 and self.saturation:
            factor = _factors(self.saturation, b, generator, dev)
            x = torch.addcmul(luminance(x) * (1 - factor), x, factor).clamp_(0, 1)
        if x.shape[1] == 3 and self.hue:
            x = rotate_hue(x, uniform(b, -self.hue, self.hue, generator, dev)).clamp_(0, 1)
        return x


class Gamma(BatchTransform):
    """`x ** gamma` with gamma log-uniform in `gamma`; `[1, 1]` is the identity. Gamma < 1
    brightens dark tissue, > 1 darkens it, without clipping either end as brightness does."""

    def __init__(self, gamma: tuple[float, float], p: float) -> None:
        super().__init__(p)
        if not 0.0 < gamma[0] <= gamma[1]:
            raise ValueError(f"gamma must satisfy 0 < min <= max, got {gamma}")
        self.log_gamma = (math.log(gamma[0]), math.log(gamma[1]))

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        gamma = torch.exp(uniform(len(x), *self.log_gamma, generator, x.device)).view(-1, 1, 1, 1)
        return x.clamp_min(0).pow(gamma)


class Grayscale(BatchTransform):
    """Replace a colour image by its luminance on all channels (no-op for 1 channel)."""

    def __init__(self, p: float) -> None:
        super().__init__(p)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator, n_views: int = 1
    ) -> torch.Tensor:
        # A grayscale image is its own luminance: skip the coin and the copy.
        return x if x.shape[1] == 1 else super().forward(x, generator, n_views)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return luminance(x).expand_as(x)


class Solarize(BatchTransform):
    """Invert pixels brighter than `threshold` (BYOL uses 0.5); `threshold=1` is the identity."""

    def __init__(self, threshold: float, *, p: float | list[float]) -> None:
        super().__init__(p)
        self.threshold = threshold

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.where(x > self.threshold, 1.0 - x, x)
