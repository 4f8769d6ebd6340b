"""Geometric augmentations as one `affine_grid` + `grid_sample` per batch.

Crop, flips, rotation, translation and shear are composed into a single 2x3 matrix per sample,
so the image is resampled (and blurred by interpolation) once, however many of them are on.
Matrices map output coordinates in [-1, 1] to input coordinates (`align_corners=False`), which
makes the identity matrix an exact copy of the image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medssl.augment.base import BatchTransform, coin, uniform


def resample(x: torch.Tensor, theta: torch.Tensor, size: int | None, padding_mode: str) -> torch.Tensor:
    """Sample `x` at `theta @ [u, v, 1]` for every output pixel of a `size` x `size` grid."""
    h, w = (size, size) if size else x.shape[-2:]
    grid = F.affine_grid(theta.to(x.dtype), [len(x), x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


class RandomResizedCrop(BatchTransform):
    """Random resized crop, flips, rotation and a small affine, resampled once.

    A crop of area fraction in `scale` and aspect ratio in `ratio` is resized to `size` (default:
    the input size), flipped left-right with `hflip_p` and up-down with `vflip_p`, rotated by an
    angle in [-degrees, degrees], sheared by [-shear, shear] degrees and shifted by up to
    `translate` of the side. `scale=[1, 1], ratio=[1, 1]` with the rest zero is the identity.
    Pixels from outside the image are filled by `padding_mode` (`zeros`, as torchvision fills 0).
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip_p: float = 0.5,
        vflip_p: float = 0.0,
        degrees: float = 0.0,
        translate: float = 0.0,
        shear: float = 0.0,
        size: int | None = None,
        padding_mode: str = "zeros",
        p: float = 1.0,
    ) -> None:
        super().__init__(p)
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.scale = tuple(scale)
        self.log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        self.hflip_p, self.vflip_p = hflip_p, vflip_p
        self.max_angle = math.radians(degrees)
        self.max_shear = math.radians(shear)
        self.translate = translate
        self.size = size
        self.padding_mode = padding_mode

    def matrices(self, b: int, generator: torch.Generator, device) -> torch.Tensor:
        """`(B, 2, 3)`: input = centre + diag(flip * crop) @ rotation @ shear @ output."""
        area = uniform(b, *self.scale, generator, device)
        aspect = torch.exp(uniform(b, *self.log_ratio, generator, device))
        # Width and height as fractions of the image; clamping keeps the crop inside it.
        w = torch.sqrt(area * aspect).clamp(max=1.0)
        h = torch.sqrt(area / aspect).clamp(max=1.0)
        cx = (1 - w) * uniform(b, -1, 1, generator, device)
        cy = (1 - h) * uniform(b, -1, 1, generator, device)
        if self.translate:
            # The image spans 2 in normalised coordinates, so a shift of f of the side is 2f.
            cx = cx + 2 * self.translate * uniform(b, -1, 1, generator, device)
            cy = cy + 2 * self.translate * uniform(b, -1, 1, generator, device)
        sx = torch.where(coin(b, self.hflip_p, generator, device), -w, w)
        sy = torch.where(coin(b, self.vflip_p, generator, device), -h, h)
        linear = torch.diag_embed(torch.stack([sx, sy], dim=1))  # (B, 2, 2)
        if self.max_angle:
            angle = uniform(b, -self.max_angle, self.max_angle, generator, device)
            cos, sin = torch.cos(angle), torch.sin(angle)
            rotation = torch.stack([cos, -sin, sin, cos], dim=1).view(b, 2, 2)
            linear = linear @ rotation
        if self.max_shear:
            shear = torch.tan(uniform(b, -self.max_shear, self.max_shear, generator, device))
            shearing = torch.eye(2, device=device).repeat(b, 1, 1)
            shearing[:, 0, 1] = shear
            linear = linear @ shearing
        return torch.cat([linear, torch.stack([cx, cy], dim=1).unsqueeze(-1)], dim=2)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return resample(x, self.matrices(len(x), generator, x.device), self.size, self.padding_mode)


class RandomCrop(BatchTransform):
    """A square of `crop_frac` of the side cut at a random position and resized to `size`
    (default: the input size). Images smaller than `min_size` px are cut at the centre instead:
    at 28 px a random offset shifts small anatomy (a lesion, the optic disc) out of the crop.
    `crop_frac=1` is the identity."""

    def __init__(
        self, crop_frac: float = 0.875, min_size: int = 32, size: int | None = None, p: float = 1.0
    ) -> None:
        super().__init__(p)
        if not 0.0 < crop_frac <= 1.0:
            raise ValueError(f"crop_frac must lie in (0, 1], got {crop_frac}")
        self.crop_frac, self.min_size, self.size = crop_frac, min_size, size

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, dev = len(x), x.device
        half_room = 1.0 - self.crop_frac
        if min(x.shape[-2:]) < self.min_size:
            centre = torch.zeros(b, 2, device=dev)
        else:
            centre = half_room * (2 * torch.rand(b, 2, generator=generator, device=dev) - 1)
        theta = torch.zeros(b, 2, 3, device=dev)
        theta[:, 0, 0] = theta[:, 1, 1] = self.crop_frac
        theta[:, :, 2] = centre
        return resample(x, theta, self.size, "border")
