"""DINO's multi-crop (Caron et al. 2021, after SwAV): global views at full size from one
`ViewPipeline` and smaller local views from another, returned global views first.

The local pipeline crops a small area of the image (its own `crop.scale`, e.g. 0.05-0.4) at the
input size; its views are then resized to `local_size` of the input side (DINO: 96/224) so the
same fraction holds at 28 and 64 px.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.augment.pipeline import ViewPipeline


class MultiCrop(nn.Module):
    def __init__(
        self,
        global_views: ViewPipeline,
        local_views: ViewPipeline | None,
        local_size: float,
    ) -> None:
        super().__init__()
        if not 0.0 < local_size <= 1.0:
            raise ValueError(
                f"local_size is a fraction of the input side in (0, 1], got {local_size}"
            )
        self.global_views = global_views
        self.local_views = local_views
        self.local_size = local_size

    @torch.no_grad()
    def forward(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        views = self.global_views(images, generator)
        if self.local_views is None:
            return views
        side = max(1, round(images.shape[-1] * self.local_size))
        for view in self.local_views(images, generator):
            views.append(
                F.interpolate(
                    view, size=(side, side), mode="bilinear", antialias=True, align_corners=False
                )
            )
        return views
