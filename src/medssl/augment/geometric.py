"""Random resized crop and flips fused into one `affine_grid` + `grid_sample` for the batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medssl.augment.base import BatchTransform, coin, uniform


class RandomResizedCrop(BatchTransform):
    """Crop a random area fraction in `scale` with aspect ratio in `ratio`, resize to `size`
    (default: the input size) and flip left-right with `hflip_p`, up-down with `vflip_p`."""

    def __init__(
        self,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip_p: float = 0.5,
        vflip_p: float = 0.0,
        size: int | None = None,
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.scale = tuple(scale)
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.hflip_p = hflip_p
        self.vflip_p = vflip_p
        self.size = size

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, dev = len(x), x.device
        area = uniform(b, *self.scale, generator, dev)
        aspect = torch.exp(uniform(b, *self.log_ratio, generator, dev))
        # Width and height as fractions of the image; clamping keeps the crop inside it.
        w = torch.sqrt(area * aspect).clamp(max=1.0)
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (1 - w) * uniform(b, -1, 1, generator, dev)
        cy = (1 - h) * uniform(b, -1, 1, generator, dev)
        sx = torch.where(coin(b, self.hflip_p, generator, dev), -w, w)
        sy = torch.where(coin(b, self.vflip_p, generator, dev), -h, h)
        theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 0, 2] = sx, cx
        theta[:, 1, 1], theta[:, 1, 2] = sy, cy
        size = self.size or x.shape[-1]
        grid = F.affine_grid(theta, [b, x.shape[1], size, size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
