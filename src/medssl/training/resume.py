"""Where a pretraining starts: a fresh `TrainingState`, or the one its run folder's checkpoint
holds, and the one place that checkpoint is written.

A run folder's `checkpoints/last.pt` resumes only a run with the same `fingerprint`; it holds
the epochs done, the epoch log (`history`) and, when the run stopped inside an epoch, the
epoch's progress, so a resumed run repeats no step and loses or repeats no log line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from medssl.training.checkpoint import load_checkpoint, save_checkpoint
from medssl.training.collapse import CollapseMonitor
from medssl.training.device import grad_scaler
from medssl.training.distributed import Distributed
from medssl.training.online_probe import OnlineProbe, ProbeData
from medssl.training.train_state import EpochProgress, TrainingState
from medssl.training.val_selection import ValSelection


def new_training_state(
    *,
    method,
    optimizer: torch.optim.Optimizer,
    settings,
    device: torch.device,
    distributed: Distributed,
    probe_data: ProbeData | None,
    selection: ValSelection | None,
) -> TrainingState:
    """The state of a run that has not trained yet; `settings` is a `PretrainSettings`."""
    # The batch order: the same on every process.
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    # Each process augments its own share with its own stream; one process uses one stream.
    view_generator = generator
    if distributed.enabled:
        view_generator = torch.Generator(device=device).manual_seed(
            settings.seed + 7919 * (distributed.rank + 1)
        )
    probe = None
    if probe_data is not None:
        # Its initialisation draws from a forked generator: with or without the probe (and
        # whatever labels it reads), the encoder sees the same random numbers.
        with torch.random.fork_rng(devices=[]):
            probe = OnlineProbe(
                method.feature_dim, probe_data.num_classes, probe_data.task, settings.probe_lr
            ).to(device)
    return TrainingState(
        method=method,
        optimizer=optimizer,
        scaler=grad_scaler(device, settings.precision),
        generator=generator,
        view_generator=view_generator,
        probe=probe,
        monitor=CollapseMonitor(
            min_std=settings.collapse_min_std, min_rank=settings.collapse_min_rank
        ),
        selection=selection,
    )


@dataclass(frozen=True)
class Resumed:
    """Where a run starts: the epochs done, the unfinished epoch's progress (None: it stopped
    between epochs, or never ran) and the epoch log so far, which the loop takes over."""

    epochs_done: int
    progress: EpochProgress | None
    history: tuple[dict, ...]


class RunCheckpoint:
    """`run_dir/checkpoints/last.pt` of one run: resume from it, write it (main process only;
    every process must call `save`, which gathers per-rank states). The epoch log is not kept
    here: `resume` hands back the saved one and `save` writes the one it is handed."""

    def __init__(
        self,
        *,
        run_dir: Path,
        fingerprint: dict | str,
        state: TrainingState,
        distributed: Distributed,
    ) -> None:
        self.path = Path(run_dir) / "checkpoints" / "last.pt"
        self.fingerprint, self.state, self.distributed = fingerprint, state, distributed

    def resume(self, device: torch.device) -> Resumed:
        """Restore the state from the checkpoint, if there is one."""
        saved = load_checkpoint(self.path, self.fingerprint)
        if saved is None:
            return Resumed(epochs_done=0, progress=None, history=())
        return Resumed(
            epochs_done=saved["epoch"],
            progress=self.state.load(saved, self.distributed.rank, device),
            history=tuple(saved["history"]),
        )

    def save(
        self, epochs_done: int, progress: EpochProgress | None, *, history: Sequence[dict]
    ) -> None:
        """Write the checkpoint after `epochs_done` epochs (and `progress` into the next), with
        `history`, the log of those epochs."""
        checkpoint = self.state.checkpoint(
            epochs_done=epochs_done,
            progress=progress,
            history=history,
            distributed=self.distributed,
        )
        if self.distributed.is_main:
            save_checkpoint(self.path, fingerprint=self.fingerprint, state=checkpoint)
