"""Augmentations from retinal self-supervised learning: CLAHE, background removal, jigsaw.

CLAHE is deterministic, so it is a `StoredImageTransform`: OpenCV runs it once over the stored
uint8 images, not on every batch. Background removal and the jigsaw act on the float batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch

from medssl.augment.base import BatchTransform, StoredImageTransform
from medssl.augment.color import luminance


class CLAHE(StoredImageTransform):
    """Contrast-limited adaptive histogram equalisation (OpenCV) with `clip_limit` and a
    `tile_grid` x `tile_grid` grid of tiles. Colour images are equalised on the lightness of
    their CIE Lab form, so hue is kept. `enabled=false` switches it off."""

    def __init__(self, clip_limit: float, tile_grid: int, enabled: bool) -> None:
        super().__init__(enabled)
        if clip_limit <= 0 or tile_grid < 1:
            raise ValueError(
                f"CLAHE needs clip_limit > 0 and tile_grid >= 1, got {clip_limit}, {tile_grid}"
            )
        self.clip_limit, self.tile_grid = clip_limit, tile_grid

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        clahe = cv2.createCLAHE(
            clipLimit=self.clip_limit, tileGridSize=(self.tile_grid, self.tile_grid)
        )
        arrays = images.cpu().numpy()
        out = np.empty_like(arrays)
        for i, image in enumerate(arrays):
            if image.shape[0] == 1:
                out[i, 0] = clahe.apply(np.ascontiguousarray(image[0]))
            else:
                lab = cv2.cvtColor(
                    np.ascontiguousarray(image.transpose(1, 2, 0)), cv2.COLOR_RGB2LAB
                )
                lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
                out[i] = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB).transpose(2, 0, 1)
        return torch.from_numpy(out).to(images.device)

    def extra_repr(self) -> str:
        return f"clip_limit={self.clip_limit}, tile_grid={self.tile_grid}, enabled={self.enabled}"


class BackgroundRemoval(BatchTransform):
    """Zero every pixel whose luminance is below `threshold` (in [0, 1]): the dark surround of a
    fundus photograph carries sensor noise, not anatomy. `threshold=0` is the identity."""

    def __init__(self, threshold: float, p: float) -> None:
        super().__init__(p)
        self.threshold = threshold

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x.masked_fill(luminance(x) < self.threshold, 0.0)


class Jigsaw(BatchTransform):
    """Multi-stage jigsaw: each image is cut into a g x g grid of tiles, g drawn per sample
    from `grids` (8/4/2/1 mixes fine and coarse puzzles), and its tiles are shuffled.

    Tiles are `side // g` pixels; when g does not divide the side, the leftover bottom and right
    border stays in place. `grids=[1]` is the identity.
    """

    def __init__(self, grids: Sequence[int], p: float) -> None:
        super().__init__(p)
        if not grids or any(int(g) < 1 for g in grids):
            raise ValueError(f"grids must be a non-empty list of positive integers, got {grids}")
        self.grids = tuple(int(g) for g in grids)

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        choice = torch.randint(len(self.grids), (b,), generator=generator, device=x.device)
        out = x.clone()
        for k, g in enumerate(self.grids):
            th, tw = h // g, w // g
            members = (choice == k).nonzero().squeeze(1)
            # Draw the permutation even when unused so the stream does not depend on the batch.
            order = torch.rand(b, g * g, generator=generator, device=x.device).argsort(dim=1)[
                members
            ]
            if g == 1 or th == 0 or tw == 0 or len(members) == 0:
                continue
            region = x[members, :, : g * th, : g * tw]
            tiles = (
                region.reshape(-1, c, g, th, g, tw)
                .permute(0, 2, 4, 1, 3, 5)
                .reshape(-1, g * g, c, th, tw)
            )
            index = order.view(-1, g * g, 1, 1, 1).expand_as(tiles)
            tiles = tiles.gather(1, index)
            region = (
                tiles.reshape(-1, g, g, c, th, tw)
                .permute(0, 3, 1, 4, 2, 5)
                .reshape(-1, c, g * th, g * tw)
            )
            out[members, :, : g * th, : g * tw] = region
        return out
