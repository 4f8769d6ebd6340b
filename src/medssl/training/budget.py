"""What a pretraining budget may be: the batch, the epochs and the steps they make, and the
sentence a user reads when the device's memory does not hold the batch."""

from __future__ import annotations

import contextlib
import logging

import torch

from medssl.errors import MedsslError

log = logging.getLogger(__name__)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    # Drop the ragged last batch (tiny batches upset BatchNorm and contrastive losses),
    # but a dataset smaller than one batch is still one step of all its images.
    return max(1, n_images // batch_size)


def check_budget(epochs: int, batch_size: int, accumulate_steps: int) -> None:
    """Refuse a budget that cannot train, before any data is read."""
    if epochs < 1:
        raise MedsslError(f"trainer.epochs must be at least 1, got {epochs}.")
    if batch_size < 2:
        raise MedsslError(f"trainer.batch_size must be at least 2, got {batch_size}.")
    if accumulate_steps < 1:
        raise MedsslError(f"trainer.accumulate_steps must be at least 1, got {accumulate_steps}.")


def checked_batch(
    n_images: int, batch_size: int, epochs: int, accumulate_steps: int, labelled: bool
) -> int:
    """The batch to train with, after refusing a budget that cannot train."""
    if n_images < 2:
        raise MedsslError(f"pretraining needs at least 2 images, got {n_images}.")
    check_budget(epochs, batch_size, accumulate_steps)
    if batch_size <= n_images:
        return batch_size
    if not labelled:
        raise MedsslError(
            f"trainer.batch_size={batch_size} is larger than the {n_images} pretraining images; "
            f"use trainer.batch_size={n_images} or less."
        )
    # A label-using method sees only the labelled subset, which at 1 % of a small dataset is
    # smaller than any sensible batch: one step of all of it per epoch.
    log.warning(
        "trainer.batch_size=%d is larger than the %d labelled images; each step uses all %d",
        batch_size,
        n_images,
        n_images,
    )
    return n_images


@contextlib.contextmanager
def out_of_memory_explained(batch: int, accumulate: int, device: torch.device):
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
