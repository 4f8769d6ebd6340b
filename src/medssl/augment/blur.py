"""Gaussian blur with a per-sample sigma, as one separable depthwise convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medssl.augment.base import BatchTransform, uniform


class GaussianBlur(BatchTransform):
    """Blur with sigma drawn from `sigma` (in pixels); kernel of `kernel_frac` of the image side
    (SimCLR used 10 %), at least 3 pixels and odd. `sigma=[0, 0]` is the identity."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0), kernel_frac: float = 0.1, p: float = 0.5) -> None:
        super().__init__(p)
        if not 0.0 <= sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must satisfy 0 <= min <= max, got {sigma}")
        self.sigma = tuple(sigma)
        self.kernel_frac = kernel_frac

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        size = max(3, int(self.kernel_frac * max(h, w)) | 1)
        # A vanishing sigma gives a unit impulse, not a division by zero.
        sigma = uniform(b, *self.sigma, generator, x.device).clamp_min(1e-3).view(-1, 1)
        offsets = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
        kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, size)
        kernel = kernel.repeat_interleave(c, dim=0)  # one kernel per (sample, channel)
        flat = x.reshape(1, b * c, h, w)
        pad = size // 2
        flat = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel.view(b * c, 1, 1, size), groups=b * c)
        flat = F.conv2d(F.pad(flat, (0, 0, pad, pad), mode="reflect"), kernel.view(b * c, 1, size, 1), groups=b * c)
        return flat.view(b, c, h, w)
