"""Random sharpness with a per-sample factor, as one depthwise 3x3 convolution per batch.

PIL's `ImageEnhance.Sharpness` (which torchvision's `adjust_sharpness` reproduces): blend the
image with its smoothed copy, `smooth + factor * (image - smooth)`, where the smoothing kernel
is [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 and the one-pixel border keeps the image's own pixels.
Factor 0 gives the smoothed image, 1 the image itself, above 1 a sharpened one. The
SimCLR-thesis sequence draws the factor uniformly from [1, 10] for every view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medssl.augment.base import BatchTransform, uniform

_SMOOTH = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))


def smoothed(x: torch.Tensor) -> torch.Tensor:
    """`x` `(B, C, H, W)` with its interior replaced by PIL's SMOOTH filter; the border kept."""
    b, c, h, w = x.shape
    if h < 3 or w < 3:
        return x  # no interior to smooth
    kernel = x.new_tensor(_SMOOTH)
    kernel = (kernel / kernel.sum()).view(1, 1, 3, 3)
    # Every channel of every sample is its own image: one single-filter convolution for all.
    inner = F.conv2d(x.reshape(b * c, 1, h, w), kernel).view(b, c, h - 2, w - 2)
    out = x.clone()
    out[..., 1:-1, 1:-1] = inner
    return out


class Sharpness(BatchTransform):
    """Sharpen (or soften) with a factor drawn per sample from `factor`; `[1, 1]` is the
    identity. Values are clipped to [0, 1] as PIL clips to 0-255."""

    def __init__(self, factor: tuple[float, float], p: float) -> None:
        super().__init__(p)
        if not 0.0 <= factor[0] <= factor[1]:
            raise ValueError(f"factor must satisfy 0 <= min <= max, got {factor}")
        self.factor = tuple(factor)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        factor = uniform(len(x), *self.factor, generator, x.device).view(-1, 1, 1, 1)
        smooth = smoothed(x)
        return torch.lerp(smooth, x, factor.to(x.dtype)).clamp_(0, 1)
