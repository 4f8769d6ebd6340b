"""What every method shares: an encoder, `forward(views, labels=None) -> dict` and a step hook.

The training loop knows only this surface. `forward` returns `loss` and its parts under
`loss/<part>` for logging; methods that need labels set `uses_labels = True` and are then built
with the task description and trained on the labelled subset only.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.models.backbone import feature_dim


class Method(nn.Module):
    uses_labels = False

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim(backbone)

    def encode_views(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Run the backbone once on all views (one BatchNorm pass, one kernel launch per layer)."""
        return list(self.backbone(torch.cat(views)).chunk(len(views)))

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        raise NotImplementedError

    def on_step_end(self, progress: float) -> None:
        """Called after each optimiser step with the fraction of training done (EMA updates)."""
