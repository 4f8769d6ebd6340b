"""MoCo v2 (Chen, Fan, Girshick, He 2020): a query encoder, a momentum key encoder and a queue
of earlier keys as negatives, with an MLP projector and InfoNCE (temperature 0.2 in the paper).

The loss is symmetrised (each view is once the query, once the key), as in MoCo v3's
re-implementation of v2, and both views' keys join the queue. `queue_size: auto` sizes the
queue to the data: the largest multiple of the batch not above half the pretraining images,
capped at `max_queue_size` (the paper's ImageNet queue is 65536) and at least one batch. On a
small dataset the queue must stay well below the dataset size, or it is full of stale keys of
the very images in the batch. Called without `prepare` (outside the training loop), an `auto`
queue holds one batch.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from medssl.losses.gather import gather_no_grad
from medssl.losses.infonce import InfoNCELoss
from medssl.methods.base import Method
from medssl.methods.momentum import ema_update, frozen_copy, momentum_at
from medssl.models.heads import MLPHead

log = logging.getLogger(__name__)


def auto_queue_size(n_images: int, batch_size: int, max_queue_size: int = 65536) -> int:
    size = min(n_images // 2, max_queue_size) // batch_size * batch_size
    return max(size, batch_size)


class MoCo(Method):
    def __init__(
        self,
        backbone: nn.Module,
        loss: InfoNCELoss,
        *,
        proj_hidden_dim: int,
        proj_dim: int,
        momentum: float,
        queue_size: int | str,
        max_queue_size: int,
    ) -> None:
        super().__init__(backbone)
        self.projector = MLPHead(self.feature_dim, proj_hidden_dim, proj_dim, num_layers=2)
        self.key_backbone = frozen_copy(backbone)
        self.key_projector = frozen_copy(self.projector)
        self.loss = loss
        self.momentum = momentum
        momentum_at(momentum, 0.0)  # validates
        self.proj_dim = proj_dim
        self.max_queue_size = max_queue_size
        self.queue_size = queue_size
        self.register_buffer("queue", None)
        self.register_buffer("queue_ptr", None)
        if queue_size != "auto":
            if not isinstance(queue_size, int) or queue_size < 1:
                raise ValueError(
                    f"queue_size must be a positive integer or 'auto', got {queue_size!r}"
                )
            self._allocate(queue_size)

    def _allocate(self, size: int) -> None:
        queue = F.normalize(torch.randn(size, self.proj_dim), dim=1)
        device = next(self.parameters()).device
        self.register_buffer("queue", queue.to(device))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long, device=device))

    def prepare(self, n_images: int, batch_size: int) -> None:
        if self.queue is None:
            size = auto_queue_size(n_images, batch_size, self.max_queue_size)
            log.info(
                "MoCo queue: %d keys (auto, from %d images and batch %d)",
                size,
                n_images,
                batch_size,
            )
            self._allocate(size)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> dict:
        if self.queue is None:  # used outside the training loop, which calls prepare first
            self.prepare(n_images=2 * len(views[0]), batch_size=len(views[0]))
        x = torch.cat(views[:2])
        h = self.backbone(x)
        q_a, q_b = self.projector(h).chunk(2)
        with torch.no_grad():
            k_a, k_b = self.key_projector(self.key_backbone(x)).float().chunk(2)
        loss = (self.loss(q_a, k_b, self.queue) + self.loss(q_b, k_a, self.queue)) / 2
        if self.training:
            self._enqueue(torch.cat([k_a, k_b]))
        return {"loss": loss, "embedding": h[: len(views[0])].detach()}

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        keys = F.normalize(gather_no_grad(keys), dim=1)[-len(self.queue) :]
        slots = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % len(self.queue)
        self.queue[slots] = keys.to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % len(self.queue))

    def on_step_end(self, progress: float) -> None:
        ema_update(self.key_backbone, self.backbone, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)
