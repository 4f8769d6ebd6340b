"""Gaussian blur with a per-sample sigma, separable, with reflected borders.

Small kernels (SimCLR's 10 % of a 28 or 64 px side: 3 or 7 taps) are applied as a weighted sum
of shifted copies of the padded batch, one multiply-add per tap; for 512 images of 28 px on one
CPU thread that measured 0.52 ms against 0.56 ms for a depthwise convolution with one group per
(sample, channel) at 1 channel, and 1.7 against 2.2 ms at 3 channels. Larger kernels use that
depthwise convolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medssl.augment.base import BatchTransform, uniform

MAX_SHIFTED_TAPS = 9


def _blur_along(x: torch.Tensor, kernel: torch.Tensor, dim: int) -> torch.Tensor:
    """Convolve `x` `(B, C, H, W)` along `dim` (-1 or -2) with one kernel `(B, K)` per sample."""
    b, c, h, w = x.shape
    size = kernel.shape[1]
    pad = size // 2
    padded = F.pad(x, (pad, pad, 0, 0) if dim == -1 else (0, 0, pad, pad), mode="reflect")
    if size <= MAX_SHIFTED_TAPS:
        n = x.shape[dim]
        taps = kernel.view(b, 1, 1, 1, size)
        out = padded.narrow(dim, 0, n) * taps[..., 0]
        for k in range(1, size):
            out.addcmul_(padded.narrow(dim, k, n), taps[..., k])
        return out
    weight = kernel.repeat_interleave(c, dim=0)  # one kernel per (sample, channel)
    weight = weight.view(b * c, 1, 1, size) if dim == -1 else weight.view(b * c, 1, size, 1)
    return F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c).view(
        b, c, h, w
    )


class GaussianBlur(BatchTransform):
    """Blur with sigma drawn from `sigma` (in pixels); kernel of `kernel_frac` of the image side
    (SimCLR used 10 %), at least 3 pixels and odd. `sigma=[0, 0]` is the identity."""

    def __init__(
        self, *, sigma: tuple[float, float], p: float | list[float], kernel_frac: float
    ) -> None:
        super().__init__(p)
        if not 0.0 <= sigma[0] <= sigma[1]:
            raise ValueError(f"sigma must satisfy 0 <= min <= max, got {sigma}")
        self.sigma = tuple(sigma)
        self.kernel_frac = kernel_frac

    def kernel_size(self, side: int) -> int:
        return max(3, int(self.kernel_frac * side) | 1)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        size = self.kernel_size(max(h, w))
        # A vanishing sigma gives a unit impulse, not a division by zero.
        sigma = uniform(b, *self.sigma, generator, x.device).clamp_min(1e-3).view(-1, 1)
        offsets = torch.arange(size, device=x.device, dtype=x.dtype) - size // 2
        kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum(dim=1, keepdim=True)  # (B, size)
        return _blur_along(_blur_along(x, kernel, -1), kernel, -2)
