"""Stored pixels -> float32 in [0, 1], on whatever device the batch is on.

The image store holds uint8 or uint16 arrays (`decode.decode_image`); a batch of them goes to
the device as it is and becomes the float image that `model_input.normalize` and the
augmentations take. `as_torch` makes the tensor from a numpy array or memmap slice.

Tensors keep their numpy dtype: torch.uint8 or torch.uint16, so the dtype alone says whether
the full range is 255 or 65535. On the installed torch (2.14) uint16 tensors come from numpy,
copy to a device, index, `index_select`, `repeat`, `cat` and cast to float32, but have no
reductions (`max`, `amax`, `kthvalue` raise NotImplementedError), so every mapping casts to
float32 first; float32 holds every uint16 value exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from medssl.errors import MedsslError

KINDS = ("range", "minmax", "percentile", "window")


def as_torch(array: np.ndarray) -> torch.Tensor:
    """A uint8 or uint16 numpy array (a read-only memmap slice too) -> a CPU tensor of the
    same dtype with memory of its own, ready for `pin_memory` or `.to(device)`."""
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"as_torch takes uint8 or uint16 arrays, not {array.dtype}")
    # A copy: a memmap slice is read-only and tied to its file.
    return torch.from_numpy(np.array(array, copy=True))


@dataclass(frozen=True)
class IntensityMapping:
    """Per-batch map of stored uint8/uint16 pixels to float32 in [0, 1].

    kind:
        range: x / 255 (uint8) or x / 65535 (uint16), the stored range as it is.
        minmax: per image, over its channels and pixels, (x - min) / (max - min);
            0 for a constant image.
        percentile: per image, x clipped to its `low`-th and `high`-th percentiles (in
            percent, linear interpolation as numpy's default), then min-max between them; 0
            where the two coincide.
        window: a fixed window in stored units, DICOM's linear VOI function (PS3.3
            C.11.2.1.2.1): clip((x - (center - 0.5)) / (width - 1) + 0.5, 0, 1), a step at
            center - 0.5 when width is 1.
    """

    kind: str
    low: float
    high: float
    center: float | None
    width: float | None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MedsslError(
                f"dataset.intensity.kind must be one of {', '.join(KINDS)}, got {self.kind!r}."
            )
        if self.kind == "percentile" and not 0 <= self.low < self.high <= 100:
            raise MedsslError(
                "dataset.intensity.low and dataset.intensity.high must be percentiles with "
                f"0 <= low < high <= 100, got low={self.low} and high={self.high}."
            )
        if self.kind == "window":
            _check_window(self.center, self.width)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or uint16 `(B, C, H, W)` -> float32 `(B, C, H, W)` in [0, 1], same device."""
        full_range = _full_range(images)
        x = images.to(torch.float32)
        if self.kind == "range":
            return x / full_range
        if self.kind == "window":
            return _linear_window(x, self.center, self.width)
        flat = x.flatten(1)
        if self.kind == "minmax":
            return _stretch(x, flat.amin(dim=1), flat.amax(dim=1))
        low, high = _percentile(flat, self.low), _percentile(flat, self.high)
        return _stretch(x, low, high)


def _check_window(center: float | None, width: float | None) -> None:
    if center is None:
        raise MedsslError(
            "dataset.intensity.center must be set (in stored pixel units) for kind 'window'."
        )
    if width is None or width < 1:
        raise MedsslError(
            "dataset.intensity.width must be a window width of at least 1 (in stored pixel "
            f"units) for kind 'window', got {width}."
        )


def _full_range(images: torch.Tensor) -> float:
    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return 255.0
    if images.dtype == torch.uint16:
        return 65535.0
    raise ValueError(f"expected uint8 or uint16 images, got {images.dtype}")


def _linear_window(x: torch.Tensor, center: float, width: float) -> torch.Tensor:
    if width == 1:
        return (x > center - 0.5).to(torch.float32)
    return ((x - (center - 0.5)) / (width - 1) + 0.5).clamp_(0.0, 1.0)


def _percentile(flat: torch.Tensor, q: float) -> torch.Tensor:
    """Each row's `q`-th percentile, numpy's linear method. Two `kthvalue`s per bound keep the
    memory at one row copy; `torch.quantile` refuses inputs over 16M elements, and a full sort
    would hold int64 indices for every pixel."""
    position = q / 100 * (flat.shape[1] - 1)
    below = math.floor(position)
    lower = flat.kthvalue(below + 1, dim=1).values
    fraction = position - below
    if fraction == 0:
        return lower
    upper = flat.kthvalue(below + 2, dim=1).values
    return lower + (upper - lower) * fraction


def _stretch(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Per image: clip to [low, high], then map it to [0, 1]; 0 where low == high."""
    low, high = low.view(-1, 1, 1, 1), high.view(-1, 1, 1, 1)
    span = high - low
    scaled = (torch.minimum(torch.maximum(x, low), high) - low) / span.clamp_min(1e-12)
    return torch.where(span > 0, scaled, torch.zeros_like(scaled))
