"""What every method shares: an encoder, `forward(views, labels=None) -> dict` and step hooks.

The training loop knows only this surface. `forward` returns `loss` and its parts under
`loss/<part>` for logging, and `embedding`, detached encoder features of the first view (the
online probe and the collapse monitors read them). Methods that need labels set
`uses_labels = True` and are then built with the task description and trained on the labelled
subset only; a method with `trains = False` (the random-init floor) is not trained at all.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.models.backbone import feature_dim


class Method(nn.Module):
    uses_labels = False
    trains = True

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim(backbone)

    @property
    def encoder(self) -> nn.Module:
        """The network evaluated and saved after pretraining: the backbone, unless the method
        offers another one (DINO's teacher, with `encoder_from=teacher`)."""
        return self.backbone

    def encode_views(
        self, views: list[torch.Tensor], encoder: nn.Module | None = None
    ) -> list[torch.Tensor]:
        """Features of every view, running `encoder` (the backbone by default) once per run of
        consecutive views of the same size: one BatchNorm pass for the two views of SimCLR,
        one for DINO's global crops and one for its local crops."""
        encoder = self.backbone if encoder is None else encoder
        features: list[torch.Tensor] = []
        start = 0
        while start < len(views):
            end = start + 1
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            features += encoder(torch.cat(views[start:end])).chunk(end - start)
            start = end
        return features

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        raise NotImplementedError

    def prepare(self, n_images: int, batch_size: int) -> None:
        """Called once by the training loop before it resumes or starts: state sized to the data
        (MoCo's queue) is allocated here so a checkpoint can be loaded into it."""

    def on_step_end(self, progress: float) -> None:
        """Called after each optimiser step with the fraction of training done (EMA updates)."""
