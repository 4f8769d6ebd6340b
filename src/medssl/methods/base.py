"""What every method shares: an encoder, `forward(views, labels=None) -> dict` and step hooks.

The training loop knows only this surface. `forward` returns `loss` and its parts under
`loss/<part>` for logging, and `embedding`, detached encoder features of the first view (the
online probe and the collapse monitors read them). Methods that need labels set
`uses_labels = True` and are then trained on the labelled subset only; one whose constructor
takes `task` and `num_classes` is built with them (`task_arguments`). A method with
`trains = False` (the random-init floor) is not trained at all.

A method that trains a classifier on the labels (the supervised baseline) offers it as
`classifier_head`, saved with the encoder and scored by the `classifier` protocol; with
`selects_on_val` the loop keeps the epoch whose `classify` scores best on val.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from medssl.models.backbone import feature_dim


class Method(nn.Module):
    uses_labels = False
    trains = True
    selects_on_val = False

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.feature_dim = feature_dim(backbone)

    @property
    def encoder(self) -> nn.Module:
        """The network evaluated and saved after pretraining: the backbone, unless the method
        offers another one (DINO's teacher, with `encoder_from=teacher`)."""
        return self.backbone

    @property
    def classifier_head(self) -> nn.Module | None:
        """The head trained to predict the labels from `encoder` features, or None."""
        return None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, n_outputs)` logits of model-input images by the trained classifier."""
        head = self.classifier_head
        if head is None:
            raise NotImplementedError(f"{type(self).__name__} trains no classifier")
        return head(self.encoder(x))

    def saved_state(self) -> dict:
        """What encoder.pt keeps: the encoder's weights, and the classifier head's if any."""
        state = {"state_dict": self.encoder.state_dict()}
        if self.classifier_head is not None:
            state["head"] = self.classifier_head.state_dict()
        return state

    def load_saved_state(self, saved: dict) -> None:
        self.encoder.load_state_dict(saved["state_dict"])
        if self.classifier_head is not None:
            self.classifier_head.load_state_dict(saved["head"])

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


def task_arguments(method_class: type, task: str, num_classes: int, train_labels) -> dict:
    """The task description for a method whose constructor asks for it (the supervised
    baseline sizes its head by it, and weighs classes by `train_labels`, the labels it trains
    on); the metric-learning methods need only the labels."""
    wanted = inspect.signature(method_class).parameters
    offered = {"task": task, "num_classes": num_classes, "train_labels": train_labels}
    return {k: v for k, v in offered.items() if k in wanted}
