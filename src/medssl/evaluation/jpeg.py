"""JPEG's lossy step in torch: 8x8 block DCT, coefficients quantised with the IJG tables.

This is baseline JPEG's quantisation (ITU-T T.81 Annex K tables, scaled by the quality as
libjpeg does), applied per 8x8 block of the batch on its device. Three-channel images go to
YCbCr first, Y quantised with the luminance table and Cb, Cr with the chrominance one; there is
no chroma subsampling and no entropy coding (lossless, so it changes nothing). Images whose side
is not a multiple of 8 are padded by edge replication and cropped back, as encoders do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BLOCK = 8
LUMINANCE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
CHROMINANCE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    *((99,) * 8 for _ in range(4)),
)
# JFIF's full-range BT.601 conversion.
_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))


def quality_table(table, quality: float, device=None) -> torch.Tensor:
    """The `(8, 8)` quantisation steps libjpeg uses at `quality` in [1, 100]."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must lie in [1, 100], got {quality}")
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    base = torch.tensor(table, dtype=torch.float32, device=device)
    return torch.floor((base * scale + 50.0) / 100.0).clamp(1.0, 255.0)


def dct_matrix(n: int = BLOCK, device=None) -> torch.Tensor:
    """Orthonormal DCT-II: `D @ block @ D.T` gives the block's coefficients."""
    k = torch.arange(n, dtype=torch.float32, device=device).view(-1, 1)
    i = torch.arange(n, dtype=torch.float32, device=device).view(1, -1)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d


def jpeg_quantise(x: torch.Tensor, quality: float) -> torch.Tensor:
    """`x` `(B, C, H, W)` in [0, 1] (C = 1 or 3) after JPEG's quantisation at `quality`."""
    b, c, h, w = x.shape
    pixels = x * 255.0
    if c == 3:
        to_ycbcr = x.new_tensor(_TO_YCBCR)
        pixels = torch.einsum("ij,bjhw->bihw", to_ycbcr, pixels)
        pixels[:, 1:] += 128.0
        tables = (LUMINANCE, CHROMINANCE, CHROMINANCE)
    else:
        tables = (LUMINANCE,) * c
    steps = torch.stack([quality_table(t, quality, x.device) for t in tables]).view(
        1, c, 1, 1, BLOCK, BLOCK
    )
    pad_h, pad_w = -h % BLOCK, -w % BLOCK
    padded = F.pad(pixels - 128.0, (0, pad_w, 0, pad_h), mode="replicate")
    hb, wb = padded.shape[-2] // BLOCK, padded.shape[-1] // BLOCK
    # (B, C, hb, wb, 8, 8): one row per block.
    blocks = padded.view(b, c, hb, BLOCK, wb, BLOCK).permute(0, 1, 2, 4, 3, 5)
    d = dct_matrix(device=x.device)
    coefficients = d @ blocks @ d.T
    restored = d.T @ (torch.round(coefficients / steps) * steps) @ d
    pixels = restored.permute(0, 1, 2, 4, 3, 5).reshape(b, c, hb * BLOCK, wb * BLOCK)
    pixels = pixels[..., :h, :w] + 128.0
    if c == 3:
        pixels[:, 1:] -= 128.0
        pixels = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_ycbcr), pixels)
    return (pixels / 255.0).clamp(0.0, 1.0)
