"""Multi-view augmentation of a uint8 batch on the training device.

`ViewPipeline(n_views=2, crop=..., jitter=...)` applies its named transforms in the order given,
independently per view, and returns a list of normalised float views. The names are config keys,
so an ablation is an override such as `augmentation.blur.p=0` or `augmentation.blur=null`.
Deterministic transforms of the stored images (CLAHE) are set aside and run once by
`prepare_images`, which `data.prepare.prepare_dataset` applies to every split before training
and evaluation.

On a CPU the views can be made with `cpu_threads` intra-op threads (`null`, the presets' value,
keeps torch's setting): on cores busy with other work OpenMP's barrier waits for a descheduled
thread, so `cpu_threads: 1` is for shared machines (docs/benchmarks.md). The model's own step
keeps every thread.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from medssl.augment.base import StoredImageTransform
from medssl.data.model_input import normalize, to_unit


@contextlib.contextmanager
def intra_op_threads(n: int | None, device: torch.device):
    """Run the block with `n` intra-op threads on a CPU; a no-op for `None` or other devices."""
    previous = torch.get_num_threads()
    if n is None or device.type != "cpu" or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ViewPipeline(nn.Module):
    def __init__(
        self, n_views: int, *, cpu_threads: int | None, **transforms: nn.Module | None
    ) -> None:
        super().__init__()
        if n_views < 1:
            raise ValueError(f"n_views must be at least 1, got {n_views}")
        if cpu_threads is not None and cpu_threads < 1:
            raise ValueError(f"cpu_threads must be at least 1 or null, got {cpu_threads}")
        self.n_views = n_views
        self.cpu_threads = cpu_threads
        present = {k: v for k, v in transforms.items() if v is not None}
        self.stored = nn.ModuleDict(
            {k: v for k, v in present.items() if isinstance(v, StoredImageTransform)}
        )
        self.transforms = nn.ModuleDict({k: v for k, v in present.items() if k not in self.stored})

    def prepare_images(self, images: torch.Tensor) -> torch.Tensor:
        """Apply the deterministic stored-image transforms (CLAHE) once to uint8 images."""
        for transform in self.stored.values():
            images = transform(images)
        return images

    @torch.no_grad()
    def forward(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        # All views as one batch (view 0's samples first): every transform runs once, on
        # n_views times the samples, instead of once per view.
        with intra_op_threads(self.cpu_threads, images.device):
            # Stored uint8/uint16 by their full range, or float already mapped to [0, 1].
            x = to_unit(images.repeat(self.n_views, 1, 1, 1))
            for transform in self.transforms.values():
                x = transform(x, generator, self.n_views)
            return list(normalize(x).chunk(self.n_views))
