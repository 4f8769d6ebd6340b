"""Additive Gaussian noise and random erasing (Zhong et al., AAAI 2020), per sample."""

from __future__ import annotations

import math

import torch

from medssl.augment.base import BatchTransform, uniform


class GaussianNoise(BatchTransform):
    """Add N(0, s^2) noise with s drawn per sample from `std`, then clip to [0, 1];
    `std=[0, 0]` is the identity."""

    def __init__(self, *, std: tuple[float, float], p: float | list[float]) -> None:
        super().__init__(p)
        if not 0.0 <= std[0] <= std[1]:
            raise ValueError(f"std must satisfy 0 <= min <= max, got {std}")
        self.std = tuple(std)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        std = uniform(len(x), *self.std, generator, x.device).view(-1, 1, 1, 1)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (x + std * noise).clamp(0, 1)


class RandomErasing(BatchTransform):
    """Fill one rectangle per image, of area fraction in `scale` and aspect ratio in `ratio`,
    with `value` (a constant in [0, 1]). `scale=[0, 0]` erases nothing."""

    def __init__(
        self,
        scale: tuple[float, float] = (0.02, 0.33),
        ratio: tuple[float, float] = (0.3, 3.3),
        value: float = 0.0,
        p: float = 0.5,
    ) -> None:
        super().__init__(p)
        if not 0.0 <= scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 <= min <= max <= 1, got {scale}")
        self.scale = tuple(scale)
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.value = value

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape
        dev = x.device
        area = uniform(b, *self.scale, generator, dev)
        aspect = torch.exp(uniform(b, *self.log_ratio, generator, dev))
        eh = (torch.sqrt(area / aspect) * h).round().clamp(max=h)
        ew = (torch.sqrt(area * aspect) * w).round().clamp(max=w)
        top = ((h - eh) * torch.rand(b, generator=generator, device=dev)).floor()
        left = ((w - ew) * torch.rand(b, generator=generator, device=dev)).floor()
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        inside = (
            (rows >= top.view(-1, 1, 1))
            & (rows < (top + eh).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1))
            & (cols < (left + ew).view(-1, 1, 1))
        )
        return x.masked_fill(inside.unsqueeze(1), self.value)
