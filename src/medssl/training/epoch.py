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
from collections.abc import Sequence
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
    """The batch each process's share is cut from, batches per optimiser step, steps per epoch
    and the run's epochs."""

    batch: int
    accumulate: int
    steps: int
    epochs: int

    @classmethod
    def of(cls, n_images: int, settings, labelled: bool) -> StepPlan:
        """The plan for `n_images` and a `PretrainSettings`, after refusing one that cannot train."""
        batch = checked_batch(
            n_images, settings.batch_size, settings.epochs, settings.accumulate_steps, labelled
        )
        micro_steps = steps_per_epoch(n_images, batch)
        accumulate = min(settings.accumulate_steps, micro_steps)
        return cls(
            batch=batch,
            accumulate=accumulate,
            steps=micro_steps // accumulate,
            epochs=settings.epochs,
        )

    def run_fraction(self, global_step: int) -> float:
        """How far through the run step `global_step` (0-based) ends, for methods whose
        momentum or temperature follows the run."""
        return (global_step + 1) / (self.epochs * self.steps)


@dataclass(frozen=True)
class StepInputs:
    """What every step reads: the images through `feed` (`batch_feed.make_feed`: resident on
    the device, or streamed to it), the view pipeline, and the labels of methods that train on
    them (on the device) and of the online probe."""

    feed: ResidentFeed | StreamedFeed
    augmentation: torch.nn.Module
    labels: torch.Tensor | None
    intensity: IntensityMapping | None  # the images' mapping to [0, 1]; None: by their dtype
    probe_data: ProbeData | None


@dataclass(frozen=True)
class Compute:
    """Where and how the steps run: the device, the processes under torchrun, the autocast
    precision and the views' memory layout (None: as the augmentation makes them)."""

    device: torch.device
    distributed: Distributed
    precision: str
    memory_format: torch.memory_format | None


@dataclass(frozen=True)
class Checkpointing:
    """The run's checkpoint file and the clock that says when the next one is due."""

    file: RunCheckpoint
    clock: CheckpointClock


@dataclass(frozen=True)
class EpochTrainer:
    """What every epoch of one run trains with; `model` is `state.method`, DDP-wrapped under
    torchrun. It keeps no epoch log: a checkpoint written inside an epoch carries the one
    `train` is handed."""

    model: torch.nn.Module
    state: TrainingState
    inputs: StepInputs
    plan: StepPlan
    scheduler: object
    compute: Compute
    checkpointing: Checkpointing

    def train(
        self,
        epoch: int,
        progress: EpochProgress | None,
        stop: StopSignals,
        *,
        history: Sequence[dict],
    ) -> tuple[EpochProgress, float]:
        """Train epoch `epoch` (0-based) from `progress` (None: its start); returns the epoch's
        progress and its seconds (including those before a resume). `history` is the log of
        the epochs done, for a checkpoint written inside this one."""
        method, plan, compute = self.state.method, self.plan, self.compute
        method.train()
        if progress is None:
            order = torch.randperm(
                len(self.inputs.feed), generator=self.state.generator, device=compute.device
            )
            progress = EpochProgress(order=order)
        started = time.perf_counter() - progress.seconds
        micro = range(progress.step * plan.accumulate, plan.steps * plan.accumulate)
        batches = self.inputs.feed.batches(
            progress.order, micro, plan.batch, compute.distributed.shard
        )
        checkpoint, clock = self.checkpointing.file, self.checkpointing.clock
        with (
            out_of_memory_explained(plan.batch, plan.accumulate, compute.device),
            contextlib.closing(batches),
        ):
            while progress.step < plan.steps:
                if not compute.distributed.all_true(not stop.requested, compute.device):
                    progress.seconds = time.perf_counter() - started
                    checkpoint.save(epoch, progress, history=history)
                    stop.stop(str(checkpoint.path))
                if progress.step and clock.due_in_epoch(compute.distributed, compute.device):
                    progress.seconds = time.perf_counter() - started
                    checkpoint.save(epoch, progress, history=history)
                    clock.saved()
                global_step = epoch * plan.steps + progress.step
                self.scheduler.step_update(global_step)
                self._step(progress, epoch, batches)
                method.on_step_end(plan.run_fraction(global_step))
                progress.step += 1
        return progress, time.perf_counter() - started

    def record(self, epoch: int, progress: EpochProgress, seconds: float) -> dict:
        """The epoch's statistics: mean losses, lr, speed, collapse monitors, online probe."""
        plan, compute, probe_data = self.plan, self.compute, self.inputs.probe_data
        record = compute.distributed.mean(
            {k: v / plan.steps for k, v in progress.sums.items()}, compute.device
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
                probe_data.val_images,
                device=compute.device,
                precision=compute.precision,
                out_device=compute.device,
                intensity=probe_data.intensity,
            )
            record["val/probe_acc"] = self.state.probe.accuracy(
                features, probe_data.val_labels.to(compute.device)
            )
        return record

    def _step(self, progress: EpochProgress, epoch: int, batches) -> None:
        """One optimiser step of `accumulate` batches; stops the run on a non-finite loss."""
        state, accumulate = self.state, self.plan.accumulate
        inputs, compute = self.inputs, self.compute
        state.optimizer.zero_grad(set_to_none=True)
        for _ in range(accumulate):
            images, idx = next(batches)
            if inputs.intensity is not None:
                images = to_unit(images, inputs.intensity)
            views = in_memory_format(
                inputs.augmentation(images, state.view_generator), compute.memory_format
            )
            with autocast(compute.device, compute.precision):
                out = self.model(views, inputs.labels[idx] if inputs.labels is not None else None)
            loss = out["loss"]
            if not compute.distributed.all_true(bool(torch.isfinite(loss)), compute.device):
                raise MedsslError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {progress.step + 1}; "
                    f"lower optimizer.base_lr or use trainer.precision=fp32 (last good checkpoint: "
                    f"{self.checkpointing.file.path})."
                )
            state.scaler.scale(loss / accumulate).backward()
            for key, value in out.items():
                if key.startswith("loss"):
                    progress.sums[key] = (
                        progress.sums.get(key, 0.0) + float(value.detach()) / accumulate
                    )
            state.monitor.add(out["embedding"])
            if state.probe is not None:
                mask = inputs.probe_data.labelled[idx]
                if int(mask.sum()) >= 2:
                    progress.probe_losses.append(
                        state.probe.train_step(
                            out["embedding"][mask], inputs.probe_data.labels[idx][mask]
                        )
                    )
        state.scaler.step(state.optimizer)
        state.scaler.update()
