"""The heads fine-tuning trains on the encoder, and the fine-tuned model they make together.

A head takes the encoder's pooled features `(B, D)` (`spatial = False`) or its last feature map
`(B, C, h, w)` (`spatial = True`, `encoder.forward_features`) and gives `(B, n_outputs)` logits;
`training_loss` returns `loss` and its parts, as methods do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medssl.data.task import Task
from medssl.errors import MedsslError


def task_loss(task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == Task.MULTILABEL:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y)


class TaskLoss(nn.Module):
    """Cross-entropy (binary cross-entropy per label for multi-label tasks), optionally weighted
    (`weight`: per class, or per label's positives) and with label smoothing `smoothing`
    (multi-label targets move to `smoothing / 2` and `1 - smoothing / 2`)."""

    def __init__(self, task: str, weight: torch.Tensor | None, smoothing: float) -> None:
        super().__init__()
        if not 0 <= smoothing < 1:
            raise MedsslError(f"label smoothing must lie in [0, 1), got {smoothing}.")
        self.task, self.smoothing = Task(task), float(smoothing)
        self.register_buffer("weight", None if weight is None else weight.float())

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.task == Task.MULTILABEL:
            target = y.float() * (1 - self.smoothing) + self.smoothing / 2
            return F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.weight)
        return F.cross_entropy(logits, y, weight=self.weight, label_smoothing=self.smoothing)


class LinearHead(nn.Module):
    """`(B, D) -> (B, n_outputs)`: one linear layer on the pooled features."""

    spatial = False

    def __init__(self, in_features: int, n_outputs: int, loss: TaskLoss) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, n_outputs)
        self.loss = loss

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)

    def training_loss(self, features: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": self.loss(self(features), y)}

    def start_from(self, linear: nn.Linear) -> None:
        """Start as `linear` (the fitted linear probe)."""
        with torch.no_grad():
            self.linear.weight.copy_(linear.weight)
            self.linear.bias.copy_(linear.bias)


class MLPHead(LinearHead):
    """`(B, D) -> (B, n_outputs)`: a linear layer plus a hidden-layer branch,
    `linear(x) + fc2(GELU(fc1(x)))`, with `fc2` zero-initialised: the head starts as its linear
    part (the linear probe, when it starts from one) and the branch adds what training finds."""

    def __init__(self, in_features: int, n_outputs: int, loss: TaskLoss, hidden: int) -> None:
        super().__init__(in_features, n_outputs, loss)
        if hidden < 1:
            raise MedsslError(f"eval.finetune.mlp_hidden must be positive, got {hidden}.")
        self.fc1 = nn.Linear(in_features, hidden)
        self.fc2 = nn.Linear(hidden, n_outputs)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features) + self.fc2(F.gelu(self.fc1(features)))


class FineTunedModel(nn.Module):
    """Encoder, dropout and head: `(B, C, H, W) -> (B, n_outputs)` logits.

    Indexable like the linear probe's `nn.Sequential(encoder, head)`: `model[0]` is the encoder,
    which is what Grad-CAM looks for its last convolutional block in."""

    def __init__(self, encoder: nn.Module, head: nn.Module, dropout: float) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        # Dropout before the head: a regulariser in training, the sampler of MC dropout at test.
        self.dropout = nn.Dropout(dropout)

    def __getitem__(self, index: int) -> nn.Module:
        return (self.encoder, self.head)[index]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """What the head reads: the feature map for spatial heads, else the pooled features."""
        return self.encoder.forward_features(x) if self.head.spatial else self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))

    def train_phase(self, encoder_frozen: bool) -> FineTunedModel:
        """Training mode for one epoch. A frozen encoder takes no gradients and stays in eval
        mode, so that head-only epochs leave its BatchNorm statistics as they were."""
        self.encoder.requires_grad_(not encoder_frozen)
        self.encoder.train(not encoder_frozen)
        self.head.train()
        self.dropout.train()
        return self

    def mc_mode(self) -> FineTunedModel:
        """Everything in eval mode except the dropout before the head (MC dropout sampling)."""
        self.eval()
        self.dropout.train()
        return self


def spatial_feature_map(encoder: nn.Module, sample: torch.Tensor) -> tuple[int, int, int]:
    """`(C, h, w)` of `encoder.forward_features` on `sample`; a clear error for encoders
    without a spatial map (ViT tokens, or a map pooled down to 1x1)."""
    name = type(encoder).__name__
    forward_features = getattr(encoder, "forward_features", None)
    if forward_features is None:
        raise MedsslError(
            f"eval.finetune.head=cam_refine needs forward_features, which {name} lacks."
        )
    was_training = encoder.training
    encoder.eval()  # a probe must not move BatchNorm's running statistics
    with torch.no_grad():
        out = forward_features(sample)
    encoder.train(was_training)
    if out.ndim != 4 or out.shape[2] * out.shape[3] < 2:
        raise MedsslError(
            f"eval.finetune.head=cam_refine needs a CNN backbone with a spatial feature map, but "
            f"{name} gives {tuple(out.shape)} (use e.g. backbone=smallcnn or resnet18, not a ViT)."
        )
    return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])
