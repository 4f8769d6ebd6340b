"""What the pretraining loop (pretrain.py) is given: its numbers (`PretrainSettings`, from
`trainer.*` and `seed`) and what each epoch's end writes or reports besides the checkpoint
(`EpochOutputs`: val selection, the pretraining curve, kept encoders, the trackers' hook)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from medssl.atomic_files import save_torch
from medssl.errors import MedsslError
from medssl.training.checkpoint_clock import CheckpointClock
from medssl.training.kept_encoders import check_keep_epochs, kept_encoder_path
from medssl.training.pretraining_curve import PretrainingCurve
from medssl.training.val_selection import ValSelection

log = logging.getLogger("medssl.training.pretrain")  # the loop's logger, as before the move


@dataclass(frozen=True, kw_only=True)
class PretrainSettings:
    """The loop's numbers (`trainer.*` and `seed` of the config, which holds their defaults).
    `batch_size` is the global batch under torchrun. `eval_every` (None: off) and
    `keep_epochs` change no weight."""

    epochs: int
    batch_size: int
    precision: str
    seed: int
    accumulate_steps: int
    collapse_min_std: float
    collapse_min_rank: float
    eval_every: int | None
    keep_epochs: tuple[int, ...]
    checkpoint_every: float | None  # seconds between checkpoints; None: every epoch
    probe_lr: float = 1e-3  # the online probe's rate: not a config key

    def __post_init__(self) -> None:
        if self.eval_every is not None and not (
            isinstance(self.eval_every, int) and self.eval_every >= 1
        ):
            raise MedsslError(
                f"trainer.eval_every must be a number of epochs (1 or more) or null, got {self.eval_every!r}."
            )
        object.__setattr__(self, "keep_epochs", check_keep_epochs(self.keep_epochs, self.epochs))
        CheckpointClock(self.checkpoint_every)  # refuses a bad interval before anything runs

    def scores_curve(self, epoch: int) -> bool:
        """Whether epoch `epoch` (1-based) is scored for the pretraining curve (and the last is)."""
        return self.eval_every is not None and (
            epoch % self.eval_every == 0 or epoch == self.epochs
        )


@dataclass(frozen=True)
class EpochOutputs:
    """What each epoch's end writes or reports besides the checkpoint, into `run_dir`.

    `selection` scores `method.classify` on val after every epoch and leaves the method at the
    best epoch when training ends; `curve` scores the encoder every `eval_every` epochs;
    `kept_encoder(epoch)` is the content of `encoders/epoch_NNN.pt` for the epochs in
    `keep_epochs`; `on_epoch_end(record)` receives each epoch's statistics (trackers)."""

    run_dir: Path
    selection: ValSelection | None
    curve: PretrainingCurve | None
    kept_encoder: Callable[[int], dict] | None
    on_epoch_end: Callable[[dict], None] | None

    def check(self, settings: PretrainSettings) -> None:
        if settings.keep_epochs and self.kept_encoder is None:
            raise ValueError("settings.keep_epochs needs kept_encoder, the content of each file")
        if settings.eval_every is not None and self.curve is None:
            raise ValueError("settings.eval_every needs the curve that scores the encoder")

    def keep_encoder(self, epoch: int) -> None:
        path = kept_encoder_path(self.run_dir, epoch)
        save_torch(path, {**self.kept_encoder(epoch), "epoch": epoch})
        log.info("Kept the encoder of epoch %d: %s", epoch, path)
