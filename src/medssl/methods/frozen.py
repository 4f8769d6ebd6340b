"""A pretrained encoder scored as it is: the row every SSL method must beat to be worth running.

MedMNIST+ (Doerrich et al. 2024) found a linear probe on frozen DINO ViT-B/16 features as strong
as a ResNet-18 trained end to end; `frozen` asks the same of any pretrained weights
(`backbone.pretrained=true`, or `backbone.weights=PATH`), through every protocol, under its own
name. Like `random` it trains nothing (`trains = False`: 0 epochs); unlike it, it refuses an
encoder without weights, whose score is the untrained floor's (pretraining_setup.check_weights).
"""

from __future__ import annotations

import torch

from medssl.methods.base import Method


class Frozen(Method):
    trains = False
    requires_weights = True  # pretraining_setup refuses a backbone built without any

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        with torch.no_grad():
            features = self.backbone(views[0])
        return {"loss": torch.zeros((), device=features.device), "embedding": features}
