"""Some rows of a split's images, gathered only when read.

The labelled subset of a memory-mapped split (`label_frac=1.0` of a large archive, say) is not
copied into memory to be evaluated: feature extraction reads it in batches and fine-tuning
feeds it like pretraining (`training.batch_feed`), each gathering only the rows it needs.
"""

from __future__ import annotations

import torch


class IndexedImages:
    """Rows `indices` of `images` (`(N, C, H, W)`), indexed like a tensor of those rows."""

    def __init__(self, images: torch.Tensor, indices: torch.Tensor) -> None:
        self.images = images
        self.indices = torch.as_tensor(indices, dtype=torch.long).cpu()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def dtype(self) -> torch.dtype:
        return self.images.dtype

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.images.shape[1:]))

    def numel(self) -> int:
        return self.shape.numel()

    def element_size(self) -> int:
        return self.images.element_size()

    def __getitem__(self, key) -> torch.Tensor:
        rows = self.indices[key.cpu() if isinstance(key, torch.Tensor) else key]
        if rows.ndim == 0:
            return self.images[int(rows)]
        return self.images.index_select(0, rows)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("IndexedImages gathers rows only (dim 0)")
        return self[index]

    def materialize(self) -> torch.Tensor:
        """Every row, copied into one tensor."""
        return self.images.index_select(0, self.indices)
