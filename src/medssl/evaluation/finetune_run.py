"""What one fine-tuning run carries from epoch to epoch, owned by `FineTune.evaluate`.

`FineTuneRun` holds the model, its optimiser, the labelled images, the augmentation and its
generators; it trains one epoch at a time and keeps the clock of the learning-rate schedule
(`training.optim.warmup_cosine`, advanced only by the updates of the all-layers phase).
`BestCheckpoint` holds the best val checkpoint so far and the epochs since it.

Steps run as pretraining's do: the encoder under autocast in the resolved `trainer.precision`
(the head in fp32), the loss through a `GradScaler` that is live for fp16 only (a step whose
gradients overflow is skipped and the scale lowered), batches in the memory format that
`trainer.speed` put the model in.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from medssl.data.model_input import to_model_input, to_unit
from medssl.evaluation.finetune_heads import FineTunedModel
from medssl.evaluation.protocol import EvalInputs
from medssl.training.batch_feed import ResidentFeed, StreamedFeed
from medssl.training.device import autocast
from medssl.training.optim import warmup_cosine
from medssl.training.speed import batch_in_memory_format


@dataclass(eq=False)
class FineTuneRun:
    """`augment_generator` draws the augmentations (on the device), `order_generator` the batch
    order of each epoch. The schedule warms up over `warmup_epochs` and decays to 0 at the end
    of the `scheduled_epochs` (the all-layers phase); `step` counts its updates so far."""

    model: FineTunedModel
    optimizer: torch.optim.Optimizer
    images: ResidentFeed | StreamedFeed
    labels: torch.Tensor
    batch_size: int
    augmentation: nn.Module | None  # None: the stored images as they are
    augment_generator: torch.Generator
    order_generator: torch.Generator
    warmup_epochs: float
    scheduled_epochs: int
    scaler: torch.amp.GradScaler  # `training.device.grad_scaler`: live for fp16 only
    memory_format: torch.memory_format | None  # channels-last where trainer.speed asks for it
    step: int = 0
    # Each parameter group's rate as the optimiser was built (head: lr, encoder: lr * scale).
    base_lrs: tuple[float, ...] = field(init=False)
    warmup_steps: int = field(init=False)
    total_steps: int = field(init=False)

    def __post_init__(self) -> None:
        self.base_lrs = tuple(group["lr"] for group in self.optimizer.param_groups)
        self.warmup_steps = round(self.warmup_epochs * self.batches_per_epoch)
        self.total_steps = self.scheduled_epochs * self.batches_per_epoch

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def set_learning_rates(self, scheduled: bool) -> None:
        """The rates of the next update: the base rates, times the warm-up + cosine factor of
        the next scheduled update when `scheduled` (which advances the clock)."""
        factor = 1.0
        if scheduled:
            factor = warmup_cosine(
                self.step, warmup_steps=self.warmup_steps, total_steps=self.total_steps
            )
            self.step += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def train_epoch(self, inputs: EvalInputs, scheduled: bool) -> dict[str, float]:
        """One pass over the labelled images in a new order; the mean of each loss part. With
        `scheduled` (all layers training) each update takes the schedule's next rates."""
        model = self.model
        totals: dict[str, float] = {}
        seen = 0
        order = torch.randperm(len(self.images), generator=self.order_generator).to(inputs.device)
        batches = range(self.batches_per_epoch)
        for x, index in self.images.batches(order, batches, self.batch_size, lambda idx: idx):
            if len(index) < 2 and model.encoder.training:
                continue  # BatchNorm cannot train on a single image
            x = (
                self.augmentation(to_unit(x, inputs.intensity), self.augment_generator)[0]
                if self.augmentation is not None
                else to_model_input(x, inputs.intensity)
            )
            x = batch_in_memory_format(x, self.memory_format)
            with autocast(inputs.device, inputs.precision):
                features = model.features(x)
            # An fp32 head: bf16 logits would tie many images.
            parts = model.head.training_loss(model.dropout(features.float()), self.labels[index])
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(parts["loss"]).backward()
            self.set_learning_rates(scheduled)
            self.scaler.step(self.optimizer)  # skipped when an fp16 gradient overflowed
            self.scaler.update()
            for name, value in parts.items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(index)
            seen += len(index)
        return {name: total / max(seen, 1) for name, total in totals.items()}


@dataclass(eq=False)
class BestCheckpoint:
    """The model's state at the epoch with the best val score so far (epoch 0: the start)."""

    score: float
    epoch: int
    state: dict
    stale: int = 0  # epochs since the last improvement

    @classmethod
    def untrained(cls, model: FineTunedModel) -> BestCheckpoint:
        """The start, scored -inf: any trained epoch replaces it unless it is scored itself."""
        return cls(score=-np.inf, epoch=0, state=copy.deepcopy(model.state_dict()))

    def offer(self, model: FineTunedModel, score: float, epoch: int) -> None:
        """Keep `model` if `score` beats the best so far, else count a stale epoch."""
        if score > self.score:
            self.score, self.epoch, self.stale = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
        else:
            self.stale += 1
