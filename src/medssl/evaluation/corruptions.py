"""Test-image corruptions at five severities, after ImageNet-C (Hendrycks & Dietterich, ICLR 2019).

Each corruption maps a uint8 batch `(B, C, H, W)` on any device to a uint8 batch of the same
shape: severity `s` in 1..len(levels) uses `levels[s - 1]`, severity 0 is the clean image. The
levels are config keys (`eval.analyses.robustness.corruptions.<name>.levels`) and must grow in
strength with the severity, which the constructor checks. Results are rounded back to 8 bits,
the form the images are stored in. Random corruptions (noise) draw from the generator passed in, so the
same seed corrupts the same pixels for every protocol and every severity.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from medssl.augment.blur import GaussianBlur as BlurTransform
from medssl.augment.color import luminance
from medssl.augment.noise import GaussianNoise as NoiseTransform
from medssl.evaluation.jpeg import jpeg_quantise


class Corruption:
    """Subclasses set `stronger` (+1: a larger level is stronger, -1: a smaller one) and
    implement `corrupt(x, level, generator)` on floats in [0, 1]."""

    stronger = 1
    description = ""

    def __init__(self, levels: Sequence[float]) -> None:
        levels = tuple(float(v) for v in levels)
        steps = [self.stronger * (b - a) for a, b in zip(levels[:-1], levels[1:])]
        if not levels or any(step <= 0 for step in steps):
            order = "increase" if self.stronger > 0 else "decrease"
            raise ValueError(
                f"{type(self).__name__} levels must {order} strictly with severity, got {list(levels)}"
            )
        self.levels = levels

    @property
    def max_severity(self) -> int:
        return len(self.levels)

    def __call__(
        self, images: torch.Tensor, severity: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 images (B, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        if not 0 <= severity <= self.max_severity:
            raise ValueError(f"severity must lie in 0..{self.max_severity}, got {severity}")
        if severity == 0:
            return images
        x = self.corrupt(images.float() / 255.0, self.levels[severity - 1], generator)
        return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)

    def corrupt(self, x: torch.Tensor, level: float, generator) -> torch.Tensor:
        raise NotImplementedError


class GaussianNoise(Corruption):
    """Additive N(0, level^2) noise on intensities in [0, 1], clipped."""

    description = "noise std"

    def corrupt(self, x, level, generator):
        return NoiseTransform(std=(level, level), p=1.0).transform(x, generator)


class GaussianBlur(Corruption):
    """Gaussian blur with sigma = level x the image side (so 28 and 64 px blur alike), a kernel
    of about 6 sigma, reflected borders."""

    description = "blur sigma / side"

    def corrupt(self, x, level, generator):
        side = max(x.shape[-2:])
        sigma = level * side
        kernel_frac = min(1.0, (6.0 * sigma + 1.0) / side)
        return BlurTransform(sigma=(sigma, sigma), kernel_frac=kernel_frac, p=1.0).transform(
            x, generator
        )


class ContrastLoss(Corruption):
    """Blend towards the image's mean luminance: mean + level * (x - mean); level 1 is clean."""

    stronger = -1
    description = "contrast factor"

    def corrupt(self, x, level, generator):
        mean = luminance(x).mean(dim=(1, 2, 3), keepdim=True)
        return (mean + level * (x - mean)).clamp(0, 1)


class BrightnessShift(Corruption):
    """Add `level` to every intensity in [0, 1], clipped (ImageNet-C shifts HSV value; on a
    grey scan that is the same)."""

    description = "brightness shift"

    def corrupt(self, x, level, generator):
        return (x + level).clamp(0, 1)


class JPEGQuantisation(Corruption):
    """8x8 block-DCT quantisation with libjpeg's tables at quality `level` (lower is stronger)."""

    stronger = -1
    description = "JPEG quality"

    def corrupt(self, x, level, generator):
        return jpeg_quantise(x, level)


class ResolutionDrop(Corruption):
    """Downsample to `level` x the side (bilinear, antialiased), then upsample bilinearly back."""

    stronger = -1
    description = "resolution scale"

    def corrupt(self, x, level, generator):
        h, w = x.shape[-2:]
        small = (max(1, round(level * h)), max(1, round(level * w)))
        down = F.interpolate(x, size=small, mode="bilinear", antialias=True, align_corners=False)
        return F.interpolate(down, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
