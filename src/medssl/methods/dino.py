"""DINO (Caron et al., ICCV 2021): a student distils a teacher (an EMA of the student, its rate
rising from `base_momentum` to 1 by cosine) through centred, sharpened softmax outputs of a
DINO head.

Views: the first `n_global_views` are global crops (the teacher's only input); the rest are
local crops of any smaller size, e.g. from `augment.multi_crop.MultiCrop`. The student runs
once per group of same-sized views; its BatchNorm running statistics are updated by the global
views only, as they are what evaluation feeds it.

`encoder_from` picks the backbone that is evaluated and saved: the paper's teacher, or the
student. The teacher is an EMA that starts at the random init; at the paper's rate of 0.996 its
window is about 250 steps, so after the few hundred steps of a MedMNIST run it is still mostly
the init and scores below the student (benchmarks/ssl_quality.py). `conf/method/dino.yaml`
therefore evaluates the student with a rate of 0.99; the teacher (and 0.996) pays off in long
runs.
"""

from __future__ import annotations

import torch
from torch import nn

from medssl.losses.dino import DINOLoss
from medssl.methods.base import Method
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.models.batch_norm import running_stats_frozen
from medssl.models.heads import DINOHead


class DINO(Method):
    def __init__(
        self,
        backbone: nn.Module,
        loss: DINOLoss,
        *,
        head_hidden_dim: int,
        head_bottleneck_dim: int,
        out_dim: int,
        base_momentum: float,
        n_global_views: int,
        head_batch_norm: bool,
        encoder_from: str,
    ) -> None:
        super().__init__(backbone)
        if loss.center.shape[1] != out_dim:
            raise ValueError(
                f"the DINO loss expects {loss.center.shape[1]} outputs but the head gives {out_dim}"
            )
        self.head = DINOHead(
            self.feature_dim, head_hidden_dim, head_bottleneck_dim, out_dim, head_batch_norm
        )
        self.teacher_backbone = frozen_copy(backbone)
        self.teacher_head = frozen_copy(self.head)
        self.loss = loss
        self.base_momentum = base_momentum
        momentum_at(base_momentum, 0.0)  # validates
        self.n_global_views = n_global_views
        if encoder_from not in ("teacher", "student"):
            raise ValueError(f"encoder_from must be 'teacher' or 'student', got {encoder_from!r}")
        self.encoder_from = encoder_from

    @property
    def encoder(self) -> nn.Module:
        return self.teacher_backbone if self.encoder_from == "teacher" else self.backbone

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        if len(views) < self.n_global_views:
            raise ValueError(f"DINO needs at least {self.n_global_views} views, got {len(views)}")
        features = self.encode_views(views[: self.n_global_views])
        with running_stats_frozen(self.backbone):  # they should describe full-size images
            features += self.encode_views(views[self.n_global_views :])
        student = self.head(torch.cat(features)).chunk(len(views))
        with torch.no_grad():
            global_views = torch.cat(views[: self.n_global_views])
            teacher = self.teacher_head(self.teacher_backbone(global_views)).chunk(
                self.n_global_views
            )
        loss = self.loss(list(student), list(teacher))
        return {"loss": loss, "embedding": features[0].detach()}

    def on_step_end(self, progress: float) -> None:
        m = momentum_at(self.base_momentum, progress)
        ema_update(self.teacher_backbone, self.backbone, m)
        ema_update(self.teacher_head, self.head, m)
        self.loss.progress.fill_(progress)
