"""What the images of a split are: count, shape, dtype, value range, and intensity per group."""

from __future__ import annotations

import torch

from medssl.data.splits import Split

LEVELS = 256


def split_stats(split: Split) -> dict:
    images = split.images
    values = images.float()
    return {
        "n": len(images),
        "shape": list(images.shape[1:]),
        "dtype": str(images.dtype).removeprefix("torch."),
        "min": int(images.min()) if len(images) else None,
        "max": int(images.max()) if len(images) else None,
        "mean": float(values.mean()) if len(images) else None,
        "std": float(values.std()) if len(images) > 1 else None,
    }


def intensity_histograms(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """`(rows, C, 256)` fraction of each row's pixels at each uint8 level, per channel; a row
    without images is all zero."""
    rows, channels = len(masks), images.shape[1]
    out = torch.zeros(rows, channels, LEVELS, dtype=torch.float64)
    for r in range(rows):
        chosen = images[masks[r]]
        if len(chosen) == 0:
            continue
        per_channel = chosen.transpose(0, 1).reshape(channels, -1).long()
        # One bincount for all channels: channel c's levels are offset by c * 256.
        offset = torch.arange(channels).view(-1, 1) * LEVELS
        counts = torch.bincount((per_channel + offset).flatten(), minlength=channels * LEVELS)
        counts = counts.view(channels, LEVELS).double()
        out[r] = counts / counts.sum(dim=1, keepdim=True)
    return out


def mean_intensity(histograms: torch.Tensor) -> torch.Tensor:
    """`(rows,)` mean uint8 level over all channels of each row's histogram."""
    levels = torch.arange(LEVELS, dtype=torch.float64)
    return (histograms * levels).sum(dim=-1).mean(dim=-1)
