"""An online linear probe: a linear classifier on detached encoder features, trained alongside
pretraining on the labelled images of each batch and scored on the val split every epoch.

It never sends gradients into the encoder; it only tells, while a run trains, whether the
features are becoming linearly useful (`val/probe_acc`). An affine-free BatchNorm in front keeps
it usable while the scale of the features drifts, as in MAE's linear probing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from medssl.data.intensity import IntensityMapping
from medssl.data.task import Task


@dataclass
class ProbeData:
    """Labels of the pretraining images (`labelled` marks which may be used) and the val split."""

    labels: torch.Tensor
    labelled: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    task: Task
    num_classes: int
    intensity: IntensityMapping | None = None  # the val images' mapping to [0, 1]


class OnlineProbe(nn.Module):
    def __init__(self, feature_dim: int, num_classes: int, task: Task, lr: float = 1e-3) -> None:
        super().__init__()
        self.multilabel = task == Task.MULTILABEL
        self.norm = nn.BatchNorm1d(feature_dim, affine=False)
        self.linear = nn.Linear(feature_dim, num_classes)
        self.optimizer = torch.optim.AdamW(self.linear.parameters(), lr=lr, weight_decay=0.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(features.detach().float()))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, targets.float())
        return F.cross_entropy(logits, targets)

    def train_step(self, features: torch.Tensor, targets: torch.Tensor) -> float:
        if len(features) < 2:  # BatchNorm needs two samples
            return float("nan")
        self.train()
        with torch.autocast(device_type=features.device.type, enabled=False):
            loss = self.loss(self(features), targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def accuracy(self, features: torch.Tensor, targets: torch.Tensor) -> float:
        """Top-1 accuracy, or the mean per-label accuracy of a multi-label task."""
        self.eval()
        logits = self(features)
        if self.multilabel:
            return float(((logits > 0).long() == targets).float().mean())
        return float((logits.argmax(dim=1) == targets).float().mean())

    def full_state(self) -> dict:
        return {"module": self.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_full_state(self, state: dict) -> None:
        self.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])


def online_probe_data(data, labelled: torch.Tensor, uses_labels: bool) -> ProbeData:
    """Probe labels for the images pretraining sees when they are `data.train` (all of it for
    SSL methods, the labelled subset for label-using ones); only `labelled` ones are used."""
    if uses_labels:
        labels = data.train.labels[labelled]
        mask = torch.ones(len(labelled), dtype=torch.bool)
    else:
        labels = data.train.labels
        mask = torch.zeros(len(labels), dtype=torch.bool)
        mask[torch.as_tensor(labelled, dtype=torch.long)] = True
    return ProbeData(
        labels=labels,
        labelled=mask,
        val_images=data.val.images,
        val_labels=data.val.labels,
        task=data.task,
        num_classes=data.num_classes,
        intensity=data.intensity,
    )
