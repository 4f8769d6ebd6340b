"""The pretraining loop: read top to bottom, one optimiser step per `accumulate_steps` batches.

Batches are drawn from uint8 images already on the device and augmented there, so no
DataLoader workers compete with the model for CPU cores. Each epoch ends with the online probe's
val accuracy, the collapse monitors, a checkpoint and a JSON line of statistics; a killed run
resumes from the last checkpoint in its run folder (method state with EMA targets, queues and
DINO's centre, optimiser, probe, random generator).

Gradient accumulation sums the gradients of several batches before one step, which enlarges
the batch the optimiser averages over but not the set of negatives a contrastive loss sees,
nor the batch over which VICReg/Barlow statistics or BatchNorm are computed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from medssl.atomic_files import write_jsonl
from medssl.errors import MedsslError
from medssl.methods.base import Method
from medssl.training.checkpoint import load_checkpoint, save_checkpoint
from medssl.training.collapse import CollapseMonitor
from medssl.training.device import autocast
from medssl.training.distributed import Distributed
from medssl.training.online_probe import OnlineProbe, ProbeData, encode

log = logging.getLogger(__name__)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    # Drop the ragged last batch (tiny batches upset BatchNorm and contrastive losses),
    # but a dataset smaller than one batch is still one step of all its images.
    return max(1, n_images // batch_size)


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
) -> list[dict]:
    """Train `method` on `images` (uint8 `(N, C, H, W)` on `device`); returns per-epoch stats.

    `on_epoch_end(record)`, when given, receives each epoch's statistics (experiment trackers).
    Under torchrun (`distributed`), `batch_size` is the global batch: every process draws the
    same batch order and trains on its share; only the main process writes.
    """
    distributed = distributed or Distributed()
    if not method.trains:
        log.info("%s trains nothing: pretraining skipped", type(method).__name__)
        return []
    if len(images) < 2:
        raise MedsslError(f"pretraining needs at least 2 images, got {len(images)}.")
    if accumulate_steps < 1:
        raise MedsslError(f"trainer.accumulate_steps must be at least 1, got {accumulate_steps}.")
    batch = min(batch_size, len(images))
    micro_steps = steps_per_epoch(len(images), batch)
    accumulate = min(accumulate_steps, micro_steps)
    steps = micro_steps // accumulate  # optimiser steps per epoch
    method.prepare(len(images), batch)
    optimizer = optimizer_factory(method, batch_size=batch * accumulate)
    scheduler = scheduler_factory(optimizer, epochs=epochs, steps_per_epoch=steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
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
    monitor = CollapseMonitor(min_std=collapse_min_std, min_rank=collapse_min_rank)
    ckpt_path = Path(run_dir) / "checkpoints" / "last.pt"
    log_path = Path(run_dir) / "train_log.jsonl"

    start_epoch, history = 0, []
    state = load_checkpoint(ckpt_path, fingerprint)
    if state is not None:
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"].to(generator.get_state().device))
        if probe is not None and state.get("probe") is not None:
            probe.load_full_state(state["probe"])
        start_epoch, history = state["epoch"], state["history"]

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
    model = distributed.wrap(method, device)
    bar = tqdm(
        range(start_epoch, epochs),
        desc="pretrain",
        unit="epoch",
        initial=start_epoch,
        total=epochs,
        disable=not distributed.is_main,
    )
    for epoch in bar:
        method.train()
        started = time.perf_counter()
        sums: dict[str, float] = {}
        probe_losses: list[float] = []
        order = torch.randperm(len(images), generator=generator, device=device)
        with _out_of_memory_explained(batch, accumulate, device):
            for step in range(steps):
                global_step = epoch * steps + step
                scheduler.step_update(global_step)
                optimizer.zero_grad(set_to_none=True)
                for micro in range(accumulate):
                    start = (step * accumulate + micro) * batch
                    idx = distributed.shard(order[start : start + batch])
                    views = augmentation(images[idx], view_generator)
                    with autocast(device, precision):
                        out = model(views, labels[idx] if labels is not None else None)
                    loss = out["loss"]
                    if not distributed.all_true(bool(torch.isfinite(loss)), device):
                        raise MedsslError(
                            f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; lower "
                            f"optimizer.base_lr or use trainer.precision=fp32 (last good checkpoint: {ckpt_path})."
                        )
                    scaler.scale(loss / accumulate).backward()
                    for key, value in out.items():
                        if key.startswith("loss"):
                            sums[key] = sums.get(key, 0.0) + float(value.detach()) / accumulate
                    monitor.add(out["embedding"])
                    if probe is not None:
                        mask = probe_data.labelled[idx]
                        if int(mask.sum()) >= 2:
                            probe_losses.append(
                                probe.train_step(
                                    out["embedding"][mask], probe_data.labels[idx][mask]
                                )
                            )
                scaler.step(optimizer)
                scaler.update()
                method.on_step_end((global_step + 1) / (epochs * steps))
        seconds = time.perf_counter() - started
        record = distributed.mean({k: v / steps for k, v in sums.items()}, device)
        record.update(
            epoch=epoch + 1,
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            images_per_s=steps * accumulate * batch / seconds,
        )
        record.update(monitor.summary())
        if probe is not None:
            finite = [v for v in probe_losses if math.isfinite(v)]
            record["probe/loss"] = sum(finite) / len(finite) if finite else None
            features = encode(method.backbone, probe_data.val_images, device, precision)
            record["val/probe_acc"] = probe.accuracy(features, probe_data.val_labels.to(device))
        history.append(record)
        if not distributed.is_main:
            continue
        save_checkpoint(
            ckpt_path,
            fingerprint=fingerprint,
            state={
                "epoch": epoch + 1,
                "history": history,
                "method": method.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "generator": generator.get_state(),
                "probe": probe.full_state() if probe is not None else None,
            },
        )
        write_jsonl(log_path, history)  # after the checkpoint: the log never runs ahead of it
        if on_epoch_end is not None:
            on_epoch_end(record)
        postfix = {"loss": f"{record['loss']:.4f}", "lr": f"{record['lr']:.2e}"}
        if "val/probe_acc" in record:
            postfix["probe_acc"] = f"{record['val/probe_acc']:.3f}"
        bar.set_postfix(postfix)
    bar.close()
    if history and history[-1].get("collapse/collapsed"):
        log.warning(
            "The embeddings look collapsed (normalised std %.3g, effective rank %.3g)",
            history[-1]["collapse/std"],
            history[-1]["collapse/effective_rank"],
        )
    return history


@contextlib.contextmanager
def _out_of_memory_explained(batch: int, accumulate: int, device: torch.device):
    """Running out of device memory becomes the sentence that says which batch did not fit and
    what to set instead."""
    try:
        yield
    except torch.OutOfMemoryError:
        half = max(1, batch // 2)
        raise MedsslError(
            f"{device} ran out of memory with a batch of {batch} images ({accumulate} accumulated "
            f"per step); use trainer.batch_size={half}, or keep the optimiser's batch with "
            f"trainer.batch_size={half} trainer.accumulate_steps={2 * accumulate}."
        ) from None


def pretrain_summary(history: list[dict]) -> dict:
    """What results.json keeps of the last epoch: probe accuracy and the collapse verdict."""
    last = history[-1] if history else {}
    return {
        "pretrain/val_probe_acc": last.get("val/probe_acc"),
        "pretrain/embedding_std": last.get("collapse/std"),
        "pretrain/effective_rank": last.get("collapse/effective_rank"),
        "pretrain/collapsed": last.get("collapse/collapsed"),
    }
