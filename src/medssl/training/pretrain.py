"""The pretraining loop: read top to bottom, one optimiser step per batch.

Batches are drawn from uint8 images already on the device and augmented there, so no
DataLoader workers compete with the model for CPU cores. Each epoch ends with a checkpoint and
a JSON line of statistics; a killed run resumes from the last checkpoint in its run folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from medssl.atomic_files import write_jsonl
from medssl.errors import MedsslError
from medssl.methods.base import Method
from medssl.training.checkpoint import load_checkpoint, save_checkpoint
from medssl.training.device import autocast

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
    fingerprint: str,
) -> list[dict]:
    """Train `method` on `images` (uint8 `(N, C, H, W)` on `device`); returns per-epoch stats."""
    if len(images) < 2:
        raise MedsslError(f"pretraining needs at least 2 images, got {len(images)}.")
    batch = min(batch_size, len(images))
    steps = steps_per_epoch(len(images), batch)
    optimizer = optimizer_factory(method, batch_size=batch)
    scheduler = scheduler_factory(optimizer, epochs=epochs, steps_per_epoch=steps)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    generator = torch.Generator(device=device).manual_seed(seed)
    ckpt_path = Path(run_dir) / "checkpoints" / "last.pt"
    log_path = Path(run_dir) / "train_log.jsonl"

    start_epoch, history = 0, []
    state = load_checkpoint(ckpt_path, fingerprint)
    if state is not None:
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        generator.set_state(state["generator"].to(generator.get_state().device))
        start_epoch, history = state["epoch"], state["history"]

    log.info("Pretraining %s for %d epochs of %d steps (batch %d, %s on %s)",
             type(method).__name__, epochs, steps, batch, precision, device)
    bar = tqdm(range(start_epoch, epochs), desc="pretrain", unit="epoch", initial=start_epoch, total=epochs)
    for epoch in bar:
        method.train()
        started = time.perf_counter()
        sums: dict[str, float] = {}
        order = torch.randperm(len(images), generator=generator, device=device)
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            global_step = epoch * steps + step
            scheduler.step_update(global_step)
            views = augmentation(images[idx], generator)
            with autocast(device, precision):
                out = method(views, labels[idx] if labels is not None else None)
            loss = out["loss"]
            if not torch.isfinite(loss):
                raise MedsslError(
                    f"the loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; lower "
                    f"optimizer.base_lr or use trainer.precision=fp32 (last good checkpoint: {ckpt_path})."
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            method.on_step_end((global_step + 1) / (epochs * steps))
            for key, value in out.items():
                if key.startswith("loss"):
                    sums[key] = sums.get(key, 0.0) + float(value.detach())
        seconds = time.perf_counter() - started
        record = {k: v / steps for k, v in sums.items()}
        record.update(epoch=epoch + 1, lr=optimizer.param_groups[0]["lr"], seconds=seconds,
                      images_per_s=steps * batch / seconds)
        history.append(record)
        save_checkpoint(ckpt_path, fingerprint=fingerprint, state={
            "epoch": epoch + 1, "history": history, "method": method.state_dict(),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "generator": generator.get_state(),
        })
        write_jsonl(log_path, history)  # after the checkpoint: the log never runs ahead of it
        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
    bar.close()
    return history
