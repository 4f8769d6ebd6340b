"""The floor every SSL number must beat: the encoder as initialised, frozen, never trained.

`trains = False` makes the training loop skip it (0 epochs). `forward` still returns the
features and a constant zero loss, so the method can be inspected like any other.
"""

from __future__ import annotations

import torch

from medssl.methods.base import Method


class RandomInit(Method):
    trains = False

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        with torch.no_grad():
            features = self.backbone(views[0])
        return {"loss": torch.zeros((), device=features.device), "embedding": features}
