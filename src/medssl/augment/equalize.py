"""Random histogram equalisation of each image in the batch, on the device.

The SimCLR-thesis sequence ("Evaluating SimCLR for Medical Image Classification",
Imperial College London 2023) adds it with p=0.5 against the low contrast of many scans. The
mapping is PIL's `ImageOps.equalize`, which the thesis used and torchvision's `equalize`
reproduces: with `N` pixels, `last` the count in the brightest occupied bin and
`step = (N - last) // 255`, level `i` becomes `(step // 2 + cdf[i - 1]) // step` (level 0 stays 0);
`step = 0` (fewer than 255 pixels below the brightest level, e.g. a constant image) leaves
the image unchanged. OpenCV's `equalizeHist` stretches the same cumulative histogram slightly
differently (the darkest occupied level to 0, each level counting its own pixels). At 28 px
`step` is only 2 or 3, and its rounding down stretches further than OpenCV does: on the first 500
BreastMNIST training images 2.4 % of the pixels became white against OpenCV's 0.3 %. That is
kept, because it is the transform the thesis measured.

A colour image is equalised on its luminance with its chroma kept, as the thesis did in YCbCr:
with Cb and Cr fixed, changing Y by `d` changes R, G and B by `d` each.
"""

from __future__ import annotations

import torch

from medssl.augment.base import BatchTransform
from medssl.augment.color import luminance

LEVELS = 256


def level_histograms(levels: torch.Tensor) -> torch.Tensor:
    """`(B, 256)` int64 counts of the integer levels `(B, ...)` of each sample."""
    b = len(levels)
    # One bincount over sample-offset levels: integer-exact and deterministic on CUDA too,
    # which a float scatter_add is not.
    offset = torch.arange(b, device=levels.device).view(-1, *[1] * (levels.ndim - 1)) * LEVELS
    return torch.bincount((levels + offset).flatten(), minlength=b * LEVELS).view(b, LEVELS)


def equalization_luts(hist: torch.Tensor) -> torch.Tensor:
    """`(B, 256)` int64 look-up tables of PIL's histogram equalisation, one per histogram."""
    total = hist.sum(dim=1)
    brightest = LEVELS - 1 - (hist.flip(1) > 0).int().argmax(dim=1)
    step = (total - hist.gather(1, brightest.unsqueeze(1)).squeeze(1)) // (LEVELS - 1)
    before = torch.cumsum(hist, dim=1) - hist  # pixels strictly below each level
    lut = ((before + (step // 2).unsqueeze(1)) // step.clamp_min(1).unsqueeze(1)).clamp_(
        max=LEVELS - 1
    )
    identity = torch.arange(LEVELS, device=hist.device).expand_as(lut)
    return torch.where((step > 0).unsqueeze(1), lut, identity)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Equalise every image of the float batch `(B, C, H, W)` in [0, 1] (colour: its luminance).

    Values are first rounded to 256 levels, so uint8 images divided by 255 give exactly
    torchvision's `equalize` of the uint8 image, divided by 255."""
    y = luminance(x)
    levels = (y * (LEVELS - 1)).round_().clamp_(0, LEVELS - 1).long()
    lut = equalization_luts(level_histograms(levels))
    equalized = lut.gather(1, levels.flatten(1)).view_as(y).to(x.dtype) / (LEVELS - 1)
    if x.shape[1] == 1:
        return equalized
    return (x + (equalized - y)).clamp_(0, 1)


class Equalize(BatchTransform):
    """Histogram equalisation with probability `p` per sample (the thesis used 0.5). It has no
    strength: its randomness is the per-sample coin."""

    def __init__(self, p: float) -> None:
        super().__init__(p)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return equalize(x)
