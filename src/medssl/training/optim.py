"""Optimiser and per-step learning-rate schedule, both from timm.

The learning rate scales linearly with the batch: lr = base_lr * batch_size / ref_batch_size
(Goyal et al. 2017), so one `base_lr` per method holds across batch sizes. timm excludes biases
and normalisation weights from weight decay.
"""

from __future__ import annotations

import logging

from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.optim import Optimizer

log = logging.getLogger(__name__)


def build_optimizer(
    model: nn.Module,
    batch_size: int,
    name: str = "adamw",
    base_lr: float = 1e-3,
    ref_batch_size: int = 256,
    weight_decay: float = 1e-4,
    momentum: float = 0.9,
) -> Optimizer:
    lr = base_lr * batch_size / ref_batch_size
    log.info(
        "Optimizer %s, lr %.3g (base_lr %.3g x %d / %d)",
        name,
        lr,
        base_lr,
        batch_size,
        ref_batch_size,
    )
    return create_optimizer_v2(model, opt=name, lr=lr, weight_decay=weight_decay, momentum=momentum)


def build_scheduler(
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 10,
    min_lr_ratio: float = 0.0,
    warmup_lr_ratio: float = 0.0,
) -> CosineLRScheduler:
    """Linear warm-up for `warmup_epochs`, then cosine decay to `min_lr_ratio * lr`, per step.

    A warm-up longer than the run is cut to a tenth of it, so short debug runs still decay.
    """
    lr = optimizer.param_groups[0]["lr"]
    total_steps = epochs * steps_per_epoch
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if warmup_steps >= total_steps:
        warmup_steps = total_steps // 10
    return CosineLRScheduler(
        optimizer,
        t_initial=max(1, total_steps - warmup_steps),
        lr_min=lr * min_lr_ratio,
        warmup_t=warmup_steps,
        warmup_lr_init=lr * warmup_lr_ratio,
        warmup_prefix=True,
        t_in_epochs=False,
    )
