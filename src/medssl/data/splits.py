"""Labelled image splits, the one data type every loader returns: images in memory or
memory-mapped from the on-disk store (`image_store`), labels in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from medssl.data.intensity import IntensityMapping
from medssl.data.task import Task

IMAGE_DTYPES = (torch.uint8, torch.uint16)


@dataclass
class Split:
    """Images as uint8 or uint16 `(N, C, H, W)` and labels: `(N,)` int64, or `(N, L)` 0/1 for
    multi-label. `digest` is the images' content digest when the store already knows it (so a
    memory-mapped split is not read whole to key the encoder cache)."""

    images: torch.Tensor
    labels: torch.Tensor
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.images.dtype not in IMAGE_DTYPES or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 or uint16 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.labels) != len(self.images):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: torch.Tensor) -> Split:
        return Split(self.images[indices], self.labels[indices])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device), self.digest)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()


class ImageShape:
    """`channels` and `image_size` of a dataset, read from its train split (every split of a
    dataset has the same); for labelled splits and unlabelled pretraining images alike."""

    train: Split

    @property
    def channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]


@dataclass
class DatasetSplits(ImageShape):
    """Train/val/test splits of one dataset plus what a head and the metrics need to know."""

    name: str
    task: Task
    class_names: list[str]
    train: Split
    val: Split
    test: Split
    # Binary tasks: the class index that sensitivity, PPV and the operating points call positive.
    positive_class: int = 1
    # Published results on all labels (`name`, `size`, metric values, `source`), from the config.
    references: list[dict] = field(default_factory=list)
    # Stored pixels -> [0, 1] on the device (`dataset.intensity`); None: the dtype's full range.
    intensity: IntensityMapping | None = None

    def __post_init__(self) -> None:
        self.task = Task.parse(self.task)

    @property
    def num_classes(self) -> int:
        """Classes for single-label tasks; labels for multi-label ones."""
        return len(self.class_names)
