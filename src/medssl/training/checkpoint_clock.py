"""When pretraining writes its checkpoint: every `trainer.checkpoint_every` seconds of training.

A full checkpoint (weights, optimiser, every random stream) is written and fsynced; on short
epochs writing one per epoch cost about as much as the training, and on an archive an epoch can
take an hour. So the loop checkpoints by wall time, at a step boundary, inside an epoch or at
its end, and always at a stop signal and after the last epoch: a killed run loses at most the
interval, and resumes exactly from the step it saved. `None` keeps one checkpoint per epoch.
"""

from __future__ import annotations

import time

import torch

from medssl.errors import MedsslError
from medssl.training.distributed import Distributed


class CheckpointClock:
    def __init__(self, every_seconds: float | None) -> None:
        if every_seconds is not None and not every_seconds > 0:
            raise MedsslError(
                f"trainer.checkpoint_every must be a number of seconds above 0 or null (every "
                f"epoch), got {every_seconds!r}."
            )
        self.every = every_seconds
        self.last = time.monotonic()

    def saved(self) -> None:
        self.last = time.monotonic()

    def due_in_epoch(self, distributed: Distributed, device: torch.device) -> bool:
        """Whether to checkpoint at this step boundary; the same answer on every process."""
        if self.every is None:
            return False
        return distributed.all_true(time.monotonic() - self.last >= self.every, device)

    def due_at_epoch_end(
        self, last_epoch: bool, distributed: Distributed, device: torch.device
    ) -> bool:
        if self.every is None or last_epoch:
            return True
        return distributed.all_true(time.monotonic() - self.last >= self.every, device)
