"""Optimiser and per-step learning-rate schedules (config group `scheduler`).

The learning rate scales linearly with the batch: lr = base_lr * batch_size / ref_batch_size
(Goyal et al. 2017), so one `base_lr` per method holds across batch sizes. timm excludes biases
and normalisation weights from weight decay. Schedules are set per optimiser step through
`step_update(step)`: warm-up then cosine (`scheduler=cosine`, timm's) or step decay at epoch
milestones (`scheduler=multistep`, MedMNIST v2's recipe).
"""

from __future__ import annotations

import bisect
import logging
import math

from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from torch import nn
from torch.optim import Optimizer

from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def build_optimizer(
    model: nn.Module,
    batch_size: int,
    *,
    name: str,
    base_lr: float,
    ref_batch_size: int,
    weight_decay: float,
    momentum: float,
) -> Optimizer:
    """Each method's config sets name, rate and decay (conf/config.yaml, conf/method/)."""
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
    *,
    warmup_epochs: float,
    min_lr_ratio: float,
    warmup_lr_ratio: float,
) -> CosineLRScheduler:
    """Linear warm-up for `warmup_epochs` from `warmup_lr_ratio * lr`, then cosine decay to
    `min_lr_ratio * lr`, per step (conf/scheduler/cosine.yaml).

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


def warmup_cosine(step: int, *, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor of update `step` (0-based) of `total_steps`: a linear warm-up
    `(step + 1) / warmup_steps`, then a cosine from 1 towards 0 at `total_steps`.

    Fine-tuning's schedule (evaluation/finetune.py). Its warm-up is MultiStepSchedule's, whose
    first update already moves; timm's, which `build_scheduler` uses, starts at
    `warmup_lr_init`, a first update at rate 0 when that is 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class MultiStepSchedule:
    """lr × gamma at every milestone passed, after an optional linear warm-up, per step.

    PyTorch's MultiStepLR timing: with milestone m (an epoch), epoch m is the first at the
    lower rate. timm's MultiStepLRScheduler decays one step early (it compares t + 1), so this
    is written out rather than borrowed.
    """

    def __init__(
        self, optimizer: Optimizer, milestone_steps: list[int], gamma: float, warmup_steps: int
    ) -> None:
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.milestone_steps, self.gamma, self.warmup_steps = milestone_steps, gamma, warmup_steps

    def lr_factor(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        return self.gamma ** bisect.bisect_right(self.milestone_steps, step)

    def step_update(self, step: int) -> None:
        factor = self.lr_factor(step)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * factor


def build_multistep_scheduler(
    optimizer: Optimizer,
    epochs: int,
    steps_per_epoch: int,
    *,
    milestones: list[float],
    gamma: float,
    warmup_epochs: float,
) -> MultiStepSchedule:
    """Step decay: lr × `gamma` from each epoch in `milestones` on (MedMNIST v2: [50, 75], 0.1).

    Milestones past the run's last epoch never apply, so a shortened run keeps the early rate."""
    milestones = [float(m) for m in milestones]
    if any(m <= 0 for m in milestones) or milestones != sorted(milestones):
        raise MedsslError(
            f"scheduler.milestones must be increasing positive epochs, got {milestones}."
        )
    if not 0 < gamma <= 1:
        raise MedsslError(f"scheduler.gamma must lie in (0, 1], got {gamma}.")
    if warmup_epochs < 0:
        raise MedsslError(f"scheduler.warmup_epochs must be 0 or more, got {warmup_epochs}.")
    log.info("Learning rate x %g at epochs %s of %d", gamma, [f"{m:g}" for m in milestones], epochs)
    return MultiStepSchedule(
        optimizer,
        milestone_steps=[round(m * steps_per_epoch) for m in milestones],
        gamma=gamma,
        warmup_steps=round(warmup_epochs * steps_per_epoch),
    )
