"""The pretraining loop, read top to bottom: resume, then per epoch train, score, keep, checkpoint.

Each epoch (`epoch.EpochTrainer`) ends with the online probe's val accuracy and the collapse
monitors, model selection on val (`ValSelection`, when given), the pretraining curve's probes
(`PretrainingCurve`, every `eval_every` epochs), the encoders kept at `keep_epochs`, a
checkpoint and the epoch log train_log.jsonl. A killed run resumes from the last checkpoint in
its run folder (`resume.RunCheckpoint`), written every `checkpoint_every` seconds
(`checkpoint_clock`) at a step boundary and after the last epoch; a stop signal writes one at
the step reached, and the run resumes there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from medssl.atomic_files import save_torch, write_jsonl
from medssl.data.intensity import IntensityMapping
from medssl.errors import MedsslError
from medssl.methods.base import Method
from medssl.training.batch_feed import ResidentFeed, StreamedFeed
from medssl.training.checkpoint_clock import CheckpointClock
from medssl.training.distributed import Distributed
from medssl.training.epoch import EpochTrainer, StepPlan
from medssl.training.kept_encoders import check_keep_epochs, kept_encoder_path
from medssl.training.online_probe import ProbeData
from medssl.training.pretraining_curve import PretrainingCurve
from medssl.training.resume import RunCheckpoint, new_training_state
from medssl.training.speed import SpeedOptions
from medssl.training.stop_signals import StopSignals
from medssl.training.val_selection import ValSelection, selected_epoch, selected_val_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainSettings:
    """The loop's numbers (`trainer.*` and `seed` of the config). `batch_size` is the global
    batch under torchrun. `eval_every` (None: off) and `keep_epochs` change no weight."""

    epochs: int
    batch_size: int
    precision: str
    seed: int
    accumulate_steps: int = 1
    probe_lr: float = 1e-3
    collapse_min_std: float = 0.01
    collapse_min_rank: float = 2.0
    eval_every: int | None = None
    keep_epochs: tuple[int, ...] = field(default=())
    checkpoint_every: float | None = None  # seconds between checkpoints; None: every epoch

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


def pretrain(
    method: Method,
    augmentation: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    settings: PretrainSettings,
    *,
    optimizer_factory,
    scheduler_factory,
    device: torch.device,
    run_dir: Path,
    fingerprint: dict | str,
    distributed: Distributed | None = None,
    speed: SpeedOptions | None = None,
    probe_data: ProbeData | None = None,
    selection: ValSelection | None = None,
    curve: PretrainingCurve | None = None,
    kept_encoder: Callable[[int], dict] | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
    feed: ResidentFeed | StreamedFeed | None = None,
    intensity: IntensityMapping | None = None,
) -> list[dict]:
    """Train `method` on `images` (uint8 or uint16 `(N, C, H, W)`); returns per-epoch stats.

    `feed` brings each step's images to `device` (`batch_feed.make_feed`); None: `images`
    resident on `device`; `intensity` maps them to [0, 1] (None: by their dtype's range).
    `labels` (None for methods that train without them) go to `device`.

    `selection` scores `method.classify` on val after every epoch and leaves `method` at the
    best epoch when training ends. `curve` scores the encoder every `settings.eval_every`
    epochs; `kept_encoder(epoch)` is the content of `encoders/epoch_NNN.pt` for the epochs in
    `settings.keep_epochs`. `on_epoch_end(record)` receives each epoch's statistics
    (experiment trackers). Under torchrun (`distributed`) every process draws the same batch
    order and trains on its share; only the main process scores the curve and writes. SIGTERM,
    SIGUSR1 and Ctrl-C stop it after the current step with a checkpoint (`RunStopped`).
    """
    distributed = distributed or Distributed()
    if not method.trains:
        log.info("%s trains nothing: pretraining skipped", type(method).__name__)
        return []
    if settings.keep_epochs and kept_encoder is None:
        raise ValueError("settings.keep_epochs needs kept_encoder, the content of each file")
    if settings.eval_every is not None and curve is None:
        raise ValueError("settings.eval_every needs the curve that scores the encoder")
    if feed is None:
        feed = ResidentFeed(images, device)
    labels = labels.to(device) if labels is not None else None
    plan = StepPlan.of(len(feed), settings, labelled=labels is not None)
    method.prepare(len(feed), plan.batch)
    optimizer = optimizer_factory(method, batch_size=plan.batch * plan.accumulate)
    state = new_training_state(
        method, optimizer, settings, device, distributed, probe_data, selection
    )
    scheduler = scheduler_factory(optimizer, epochs=settings.epochs, steps_per_epoch=plan.steps)
    checkpoint = RunCheckpoint(run_dir, fingerprint, state, distributed)
    start_epoch, progress = checkpoint.resume(device)
    history = checkpoint.history
    log.info(
        "Pretraining %s for %d epochs of %d steps (batch %d x %d accumulated, %s on %s)",
        type(method).__name__, settings.epochs, plan.steps, plan.batch, plan.accumulate,
        settings.precision, device,
    )  # fmt: skip
    memory_format = speed.apply(method, device) if speed is not None else None
    clock = CheckpointClock(settings.checkpoint_every)
    trainer = EpochTrainer(
        distributed.wrap(method, device), augmentation, state, feed, labels, probe_data, plan,
        scheduler, settings.epochs, settings.precision, device, distributed, memory_format,
        checkpoint, clock, intensity,
    )  # fmt: skip
    main = distributed.is_main
    epochs = range(start_epoch, settings.epochs)
    bar = tqdm(epochs, desc="pretrain", unit="epoch", initial=start_epoch, total=settings.epochs,
               disable=not main)  # fmt: skip
    with StopSignals() as stop:
        for epoch in bar:
            progress, seconds = trainer.train(epoch, progress, stop)
            record, done = trainer.record(epoch, progress, seconds), epoch + 1
            if selection is not None:  # before the checkpoint, which keeps the best so far
                record.update(selection.end_epoch(method, done, device, settings.precision))
            if main and settings.scores_curve(done):
                record.update(curve.score(method, device, settings.precision))
            if main and done in settings.keep_epochs:  # before the checkpoint that passes it
                save_torch(kept_encoder_path(run_dir, done), {**kept_encoder(done), "epoch": done})
                log.info("Kept the encoder of epoch %d: %s", done, kept_encoder_path(run_dir, done))
            history.append(record)
            progress = None
            saved = clock.due_at_epoch_end(done == settings.epochs, distributed, device)
            if saved:
                checkpoint.save(done, None)
                clock.saved()
            if not main:
                continue
            if saved:  # never ahead of the checkpoint
                write_jsonl(Path(run_dir) / "train_log.jsonl", history)
            if "eval/seconds" in record:
                curve.draw(history, run_dir)
            if on_epoch_end is not None:
                on_epoch_end(record)
            bar.set_postfix(_postfix(record))
        bar.close()
        # A signal during the last epoch's bookkeeping: its checkpoint is complete, stop anyway.
        if not distributed.all_true(not stop.requested, device):
            stop.stop(str(checkpoint.path))
    if selection is not None:
        selection.restore(method)
    _warn_if_collapsed(history)
    return history


def _warn_if_collapsed(history: list[dict]) -> None:
    if history and history[-1].get("collapse/collapsed"):
        log.warning(
            "The embeddings look collapsed (normalised std %.3g, effective rank %.3g)",
            history[-1]["collapse/std"],
            history[-1]["collapse/effective_rank"],
        )


def _postfix(record: dict) -> dict:
    postfix = {"loss": f"{record['loss']:.4f}", "lr": f"{record['lr']:.2e}"}
    if "val/probe_acc" in record:
        postfix["probe_acc"] = f"{record['val/probe_acc']:.3f}"
    if record.get("select/val_auroc") is not None:
        postfix["val_auroc"] = f"{record['select/val_auroc']:.3f}"
    if record.get("eval/linear/auroc") is not None:
        postfix["linear_auroc"] = f"{record['eval/linear/auroc']:.3f}"
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
