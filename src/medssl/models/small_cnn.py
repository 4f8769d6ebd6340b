"""A small CNN encoder for laptops and fast tests, with timm's `num_features` interface."""

from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four 3x3 conv blocks (widths w, 2w, 4w, 4w; the last three stride 2) and global average
    pooling: `(B, in_chans, H, W) -> (B, 4 * width)`. `name` (the config's label) and
    `input_size` (any size works) are taken as every backbone takes them, and not used."""

    def __init__(self, in_chans: int, *, width: int, name: str, input_size: int) -> None:
        super().__init__()
        self.num_features = 4 * width
        self.features = nn.Sequential(
            _block(in_chans, width, 1),
            _block(width, 2 * width, 2),
            _block(2 * width, 4 * width, 2),
            _block(4 * width, 4 * width, 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_features(x)).flatten(1)
