"""The pretraining loop: read top to bottom, one optimiser step per `accumulate_steps` batches.

Batches are drawn from uint8 images already on the device and augmented there, so no
DataLoader workers compete with the model for CPU cores. Each epoch ends with the online probe's
val accuracy, the collapse monitors, model selection on val (`ValSelection`, when given), a
checkpoint and a JSON line of statistics; a killed run
resumes from the last checkpoint in its run folder (`train_state.TrainingState`). A stop signal
writes one inside the epoch, at the step reached, and the run resumes there.

Gradient accumulation sums the gradients of several batches before one step, which enlarges
the batch the optimiser averages over but not the set of negatives a contrastive loss sees,
nor the batch over which VICReg/Barlow statistics or BatchNorm are computed.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from medssl.atomic_files import write_jsonl
from medssl.errors import MedsslError
from medssl.methods.base import Method
from medssl.training.budget import checked_batch, out_of_memory_explained, steps_per_epoch
from medssl.training.checkpoint import load_checkpoint, save_checkpoint
from medssl.training.collapse import CollapseMonitor
from medssl.training.device import autocast
from medssl.training.distributed import Distributed
from medssl.training.features import extract_features
from medssl.training.online_probe import OnlineProbe, ProbeData
from medssl.training.speed import SpeedOptions, in_memory_format
from medssl.training.stop_signals import StopSignals
from medssl.training.train_state import EpochProgress, TrainingState
from medssl.training.val_selection import ValSelection, selected_epoch, selected_val_score

log = logging.getLogger(__name__)


def pretrain(
    method: Method,
    augmentation: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    optimizer_factory,
    scheduler_factory,
    epochs: int,
    batch_size: int,
    device: torch.device,
    precision: str,
    seed: int,
    run_dir: Path,
    fingerprint: dict | str,
    accumulate_steps: int = 1,
    probe_data: ProbeData | None = None,
    probe_lr: float = 1e-3,
    collapse_min_std: float = 0.01,
    collapse_min_rank: float = 2.0,
    on_epoch_end=None,
    distributed: Distributed | None = None,
    speed: SpeedOptions | None = None,
    selection: ValSelection | None = None,
) -> list[dict]:
    """Train `method` on `images` (uint8 `(N, C, H, W)` on `device`); returns per-epoch stats.

    `on_epoch_end(record)`, when given, receives each epoch's statistics (experiment trackers).
    `selection`, when given, scores `method.classify` on val after every epoch and leaves
    `method` at the best epoch when training ends.
    Under torchrun (`distributed`), `batch_size` is the global batch: every process draws the
    same batch order and trains on its share; only the main process writes. SIGTERM, SIGUSR1
    and Ctrl-C stop it after the current step with a checkpoint (`RunStopped`).
    """
    distributed = distributed or Distributed()
    if not method.trains:
        log.info("%s trains nothing: pretraining skipped", type(method).__name__)
        return []
    batch = checked_batch(len(images), batch_size, epochs, accumulate_steps, labels is not None)
    micro_steps = steps_per_epoch(len(images), batch)
    accumulate = min(accumulate_steps, micro_steps)
    steps = micro_steps // accumulate  # optimiser steps per epoch
    method.prepare(len(images), batch)
    optimizer = optimizer_factory(method, batch_size=batch * accumulate)
    generator = torch.Generator(device=device).manual_seed(seed)  # batch order: same everywhere
    # Each process augments its own share with its own stream; one process uses one stream.
    view_generator = generator
    if distributed.enabled:
        view_generator = torch.Generator(device=device).manual_seed(
            seed + 7919 * (distributed.rank + 1)
        )
    probe = None
    if probe_data is not None:
        # Its initialisation draws from a forked generator: with or without the probe (and
        # whatever labels it reads), the encoder sees the same random numbers.
        with torch.random.fork_rng(devices=[]):
            probe = OnlineProbe(
                method.feature_dim, probe_data.num_classes, probe_data.task, probe_lr
            ).to(device)
    state = TrainingState(
        method=method,
        optimizer=optimizer,
        scaler=torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        generator=generator,
        view_generator=view_generator,
        probe=probe,
        monitor=CollapseMonitor(min_std=collapse_min_std, min_rank=collapse_min_rank),
        selection=selection,
    )
    scheduler = scheduler_factory(optimizer, epochs=epochs, steps_per_epoch=steps)
    ckpt_path = Path(run_dir) / "checkpoints" / "last.pt"
    log_path = Path(run_dir) / "train_log.jsonl"

    start_epoch, history, progress = 0, [], None
    saved = load_checkpoint(ckpt_path, fingerprint)
    if saved is not None:
        start_epoch, history = saved["epoch"], saved["history"]
        progress = state.load(saved, distributed.rank, device)

    log.info(
        "Pretraining %s for %d epochs of %d steps (batch %d x %d accumulated, %s on %s)",
        type(method).__name__,
        epochs,
        steps,
        batch,
        accumulate,
        precision,
        device,
    )
    memory_format = speed.apply(method, device) if speed is not None else None
    model = distributed.wrap(method, device)

    def save(epoch_done: int, progress: EpochProgress | None) -> None:
        checkpoint = state.checkpoint(epoch_done, history, progress, distributed)
        if distributed.is_main:
            save_checkpoint(ckpt_path, fingerprint=fingerprint, state=checkpoint)

    bar = tqdm(
        range(start_epoch, epochs),
        desc="pretrain",
        unit="epoch",
        initial=start_epoch,
        total=epochs,
        disable=not distributed.is_main,
    )
    with StopSignals() as stop:
        for epoch in bar:
            method.train()
            if progress is None:
                order = torch.randperm(len(images), generator=generator, device=device)
                progress = EpochProgress(order=order)
            started = time.perf_counter() - progress.seconds
            with out_of_memory_explained(batch, accumulate, device):
                while progress.step < steps:
                    if not distributed.all_true(not stop.requested, device):
                        progress.seconds = time.perf_counter() - started
                        save(epoch, progress)
                        stop.stop(str(ckpt_path))
                    global_step = epoch * steps + progress.step
                    scheduler.step_update(global_step)
                    _train_step(
                        model, augmentation, state, progress, images, labels, probe_data,
                        batch=batch, accumulate=accumulate, epoch=epoch,
                        device=device, precision=precision, distributed=distributed,
                        ckpt_path=ckpt_path, memory_format=memory_format,
                    )  # fmt: skip
                    method.on_step_end((global_step + 1) / (epochs * steps))
                    progress.step += 1
            seconds = time.perf_counter() - started
            record = distributed.mean({k: v / steps for k, v in progress.sums.items()}, device)
            record.update(
                epoch=epoch + 1,
                lr=optimizer.param_groups[0]["lr"],
                seconds=seconds,
                images_per_s=steps * accumulate * batch / seconds,
            )
            record.update(_epoch_monitors(state, progress, probe_data, device, precision))
            if selection is not None:  # before the checkpoint, which keeps the best so far
                record.update(selection.end_epoch(method, epoch + 1, device, precision))
            history.append(record)
            progress = None
            save(epoch + 1, None)
            if not distributed.is_main:
                continue
            write_jsonl(log_path, history)  # after the checkpoint: the log never runs ahead of it
            if on_epoch_end is not None:
                on_epoch_end(record)
            bar.set_postfix(_postfix(record))
        bar.close()
        # A signal during the last epoch's bookkeeping: its checkpoint is complete, stop anyway.
        if not distributed.all_true(not stop.requested, device):
            stop.stop(str(ckpt_path))
    if selection is not None:
        selection.restore(method)
    if history and history[-1].get("collapse/collapsed"):
        log.warning(
            "The embeddings look collapsed (normalised std %.3g, effective rank %.3g)",
            history[-1]["collapse/std"],
            history[-1]["collapse/effective_rank"],
        )
    return history


def _train_step(
    model, augmentation, state, progress, images, labels, probe_data, *, batch, accumulate, epoch, device,
    precision, distributed, ckpt_path, memory_format,
) -> None:  # fmt: skip
    """One optimiser step of `accumulate` batches; stops the run on a non-finite loss."""
    state.optimizer.zero_grad(set_to_none=True)
    for micro in range(accumulate):
        start = (progress.step * accumulate + micro) * batch
        idx = distributed.shard(progress.order[start : start + batch])
        views = in_memory_format(augmentation(images[idx], state.view_generator), memory_format)
        with autocast(device, precision):
            out = model(views, labels[idx] if labels is not None else None)
        loss = out["loss"]
        if not distributed.all_true(bool(torch.isfinite(loss)), device):
            raise MedsslError(
                f"the loss became {loss.item()} at epoch {epoch + 1}, step {progress.step + 1}; "
                f"lower optimizer.base_lr or use trainer.precision=fp32 (last good checkpoint: "
                f"{ckpt_path})."
            )
        state.scaler.scale(loss / accumulate).backward()
        for key, value in out.items():
            if key.startswith("loss"):
                progress.sums[key] = (
                    progress.sums.get(key, 0.0) + float(value.detach()) / accumulate
                )
        state.monitor.add(out["embedding"])
        if state.probe is not None:
            mask = probe_data.labelled[idx]
            if int(mask.sum()) >= 2:
                progress.probe_losses.append(
                    state.probe.train_step(out["embedding"][mask], probe_data.labels[idx][mask])
                )
    state.scaler.step(state.optimizer)
    state.scaler.update()


def _epoch_monitors(state, progress, probe_data, device, precision) -> dict:
    """Collapse statistics of the epoch's embeddings and the online probe's val accuracy."""
    record = state.monitor.summary()
    if state.probe is not None:
        finite = [v for v in progress.probe_losses if math.isfinite(v)]
        record["probe/loss"] = sum(finite) / len(finite) if finite else None
        features = extract_features(
            state.method.backbone,
            probe_data.val_images,
            device=device,
            precision=precision,
            out_device=device,
        )
        record["val/probe_acc"] = state.probe.accuracy(features, probe_data.val_labels.to(device))
    return record


def _postfix(record: dict) -> dict:
    postfix = {"loss": f"{record['loss']:.4f}", "lr": f"{record['lr']:.2e}"}
    if "val/probe_acc" in record:
        postfix["probe_acc"] = f"{record['val/probe_acc']:.3f}"
    if record.get("select/val_auroc") is not None:
        postfix["val_auroc"] = f"{record['select/val_auroc']:.3f}"
    return postfix


def pretrain_summary(history: list[dict]) -> dict:
    """What results.json keeps of the last epoch (probe accuracy, the collapse verdict) and
    the epoch the encoder comes from (the one picked on val, else the last)."""
    last = history[-1] if history else {}
    return {
        "pretrain/val_probe_acc": last.get("val/probe_acc"),
        "pretrain/embedding_std": last.get("collapse/std"),
        "pretrain/effective_rank": last.get("collapse/effective_rank"),
        "pretrain/collapsed": last.get("collapse/collapsed"),
        "pretrain/selected_epoch": selected_epoch(history),
        "pretrain/selected_val_auroc": selected_val_score(history),
    }
