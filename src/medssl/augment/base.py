"""The shape every augmentation takes: a module on a float batch `(B, C, H, W)` in [0, 1].

Randomness is per sample and drawn from the `torch.Generator` passed in, so the same seed gives
the same views on the same device. A transform with probability `p` is computed for the whole
batch and kept where a per-sample coin says so: one branch-free kernel beats B small ones.

`p` may also be a list with one probability per view (`[1.0, 0.1]`): BYOL's asymmetric views
blur the first view always and the second rarely. The pipeline stacks its views along the batch
(view 0's samples first) and passes `n_views`, so every transform runs once for all views.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def uniform(n: int, low: float, high: float, generator: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def coin(n: int, p: float, generator: torch.Generator, device) -> torch.Tensor:
    """A boolean per sample, True with probability `p`."""
    return torch.rand(n, generator=generator, device=device) < p


def _check_probabilities(p: float | Sequence[float]) -> tuple[float, ...]:
    probs = (float(p),) if isinstance(p, (int, float)) else tuple(float(v) for v in p)
    if not probs or not all(0.0 <= v <= 1.0 for v in probs):
        raise ValueError(
            f"p must be a probability in [0, 1] or a list of them (one per view), got {p}"
        )
    return probs


class BatchTransform(nn.Module):
    """Subclasses implement `transform(x, generator)`; `forward` applies it with probability `p`."""

    def __init__(self, p: float | Sequence[float]) -> None:
        super().__init__()
        self.probs = _check_probabilities(p)

    def probability(self, view: int) -> float:
        """The probability for view `view`; a per-view list is cycled for extra views."""
        return self.probs[view % len(self.probs)]

    def transform(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, generator: torch.Generator, n_views: int = 1
    ) -> torch.Tensor:
        """Apply to `x`, which holds `n_views` equal blocks of samples, one per view."""
        probs = [self.probability(v) for v in range(n_views)]
        if all(p == 0.0 for p in probs):
            return x
        out = self.transform(x, generator)
        if all(p == 1.0 for p in probs):
            return out
        if len(set(probs)) == 1:
            keep = coin(len(x), probs[0], generator, x.device)
        else:
            per_sample = torch.tensor(probs, device=x.device).repeat_interleave(len(x) // n_views)
            keep = torch.rand(len(x), generator=generator, device=x.device) < per_sample
        return torch.where(keep.view(-1, 1, 1, 1), out, x)

    def extra_repr(self) -> str:
        return f"p={list(self.probs) if len(self.probs) > 1 else self.probs[0]}"


class StoredImageTransform(nn.Module):
    """A deterministic transform applied once to the stored uint8 images `(N, C, H, W)` instead
    of to every batch (CLAHE): the result is the same each epoch, so recomputing it is waste.
    `ViewPipeline.prepare_images` runs these; they never run inside `forward`."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        return self.apply(images) if self.enabled else images
