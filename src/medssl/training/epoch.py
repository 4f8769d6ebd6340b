"""One pretraining epoch: its optimiser steps, each of `accumulate` batches, and its record.

Batches come from the feed (`batch_feed`: the split resident on the device, or streamed from
the memory-mapped store by a background thread) and are augmented on the device, so no
DataLoader workers compete with the model for CPU cores. A stop signal is honoured between
steps with a checkpoint at the step reached; a non-finite loss stops the run at once.

Gradient accumulation sums the gradients of several batches before one step, which enlarges
the batch the optimiser averages over but not the set of negatives a contrastive loss sees,
nor the batch over which VICReg/Barlow statistics or BatchNorm are computed.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch

from medssl.data.intensity import IntensityMapping
from medssl.data.model_input import to_unit
from medssl.errors import MedsslError
from medssl.training.batch_feed import ResidentFeed, StreamedFeed
from medssl.training.budget import checked_batch, out_of_memory_explained, steps_per_epoch
from medssl.training.checkpoint_clock import CheckpointClock
from medssl.training.device import autocast
from medssl.training.distributed import Distributed
from medssl.training.features import extract_features
from medssl.training.online_probe import ProbeData
from medssl.training.resume import RunCheckpoint
from medssl.training.speed import in_memory_format
from medssl.training.stop_signals import StopSignals
from medssl.training.train_state import EpochProgress, TrainingState


@dataclass(frozen=True)
class StepPlan:
    """The batch each process's share is cut from, batches per optimiser step, steps per epoch."""

    batch: int
    accumulate: int
    steps: int

    @classmethod
    def of(cls, n_images: int, settings, labelled: bool) -> StepPlan:
        """The plan for `n_images` and a `PretrainSettings`, after refusing one that cannot train."""
        batch = checked_batch(
            n_images, settings.batch_size, settings.epochs, settings.accumulate_steps, labelled
        )
        micro_steps = steps_per_epoch(n_images, batch)
        accumulate = min(settings.accumulate_steps, micro_steps)
        return cls(batch=batch, accumulate=accumulate, steps=micro_steps // accumulate)


@dataclass
class EpochTrainer:
    """What every epoch of one run trains with; `model` is `state.method`, DDP-wrapped under
    torchrun."""

    model: torch.nn.Module
    augmentation: torch.nn.Module
    state: TrainingState
    feed: ResidentFeed | StreamedFeed
    labels: torch.Tensor | None  # on the device
    probe_data: ProbeData | None
    plan: StepPlan
    scheduler: object
    epochs: int
    precision: str
    device: torch.device
    distributed: Distributed
    memory_format: torch.memory_format | None
    checkpoint: RunCheckpoint
    clock: CheckpointClock
    intensity: IntensityMapping | None = None  # the pretraining images' mapping to [0, 1]

    def train(
        self, epoch: int, progress: EpochProgress | None, stop: StopSignals
    ) -> tuple[EpochProgress, float]:
        """Train epoch `epoch` (0-based) from `progress` (None: its start); returns the epoch's
        progress and its seconds (including those before a resume)."""
        method, steps = self.state.method, self.plan.steps
        method.train()
        if progress is None:
            order = torch.randperm(
                len(self.feed), generator=self.state.generator, device=self.device
            )
            progress = EpochProgress(order=order)
        started = time.perf_counter() - progress.seconds
        accumulate = self.plan.accumulate
        micro = range(progress.step * accumulate, steps * accumulate)
        batches = self.feed.batches(progress.order, micro, self.plan.batch, self.distributed.shard)
        with (
            out_of_memory_explained(self.plan.batch, accumulate, self.device),
            contextlib.closing(batches),
        ):
            while progress.step < steps:
                if not self.distributed.all_true(not stop.requested, self.device):
                    progress.seconds = time.perf_counter() - started
                    self.checkpoint.save(epoch, progress)
                    stop.stop(str(self.checkpoint.path))
                if progress.step and self.clock.due_in_epoch(self.distributed, self.device):
                    progress.seconds = time.perf_counter() - started
                    self.checkpoint.save(epoch, progress)
                    self.clock.saved()
                global_step = epoch * steps + progress.step
                self.scheduler.step_update(global_step)
                self._step(progress, epoch, batches)
                method.on_step_end((global_step + 1) / (self.epochs * steps))
                progress.step += 1
        return progress, time.perf_counter() - started

    def record(self, epoch: int, progress: EpochProgress, seconds: float) -> dict:
        """The epoch's statistics: mean losses, lr, speed, collapse monitors, online probe."""
        plan = self.plan
        record = self.distributed.mean(
            {k: v / plan.steps for k, v in progress.sums.items()}, self.device
        )
        record.update(
            epoch=epoch + 1,
            lr=self.state.optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_s=plan.steps * plan.accumulate * plan.batch / seconds,
        )
        record.update(self.state.monitor.summary())
        if self.state.probe is not None:
            finite = [v for v in progress.probe_losses if math.isfinite(v)]
            record["probe/loss"] = sum(finite) / len(finite) if finite else None
            features = extract_features(
                self.state.method.backbone,
                self.probe_data.val_images,
                device=self.device,
                precision=self.precision,
                out_device=self.device,
                intensity=self.probe_data.intensity,
            )
            record["val/probe_acc"] = self.state.probe.accuracy(
                features, self.probe_data.val_labels.to(self.device)
            )
        return record

    def _step(self, progress: EpochProgress, epoch: int, batches) -> None:
        """One optimiser step of `accumulate` batches; stops the run on a non-finite loss."""
        state, accumulate = self.state, self.plan.accumulate
        state.optimizer.zero_grad(set_to_none=True)
        for _ in range(accumulate):
            images, idx = next(batches)
            if self.intensity is not None:
                images = to_unit(images, self.intensity)
            views = in_memory_format(
                self.augmentation(images, state.view_generator), self.memory_format
            )
            with autocast(self.device, self.precision):
                out = self.model(views, self.labels[idx] if self.labels is not None else None)
            loss = out["loss"]
            if not self.distributed.all_true(bool(torch.isfinite(loss)), self.device):
                raise MedsslError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {progress.step + 1}; "
                    f"lower optimizer.base_lr or use trainer.precision=fp32 (last good checkpoint: "
                    f"{self.checkpoint.path})."
                )
            state.scaler.scale(loss / accumulate).backward()
            for key, value in out.items():
                if key.startswith("loss"):
                    progress.sums[key] = (
                        progress.sums.get(key, 0.0) + float(value.detach()) / accumulate
                    )
            state.monitor.add(out["embedding"])
            if state.probe is not None:
                mask = self.probe_data.labelled[idx]
                if int(mask.sum()) >= 2:
                    progress.probe_losses.append(
                        state.probe.train_step(
                            out["embedding"][mask], self.probe_data.labels[idx][mask]
                        )
                    )
        state.scaler.step(state.optimizer)
        state.scaler.update()
