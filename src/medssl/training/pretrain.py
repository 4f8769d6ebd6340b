"""The pretraining loop, read top to bottom: resume, then per epoch train, score, keep, checkpoint.

Each epoch (`epoch.EpochTrainer`) ends with the online probe's val accuracy and the collapse
monitors, model selection on val (`ValSelection`, when given), the pretraining curve's probes
(`PretrainingCurve`, every `eval_every` epochs), the encoders kept at `keep_epochs`, a
checkpoint and the epoch log train_log.jsonl. A killed run resumes from the last checkpoint in
its run folder (`resume.RunCheckpoint`), written every `checkpoint_every` seconds
(`checkpoint_clock`) at a step boundary and after the last epoch; a stop signal writes one at
the step reached, and the run resumes there. What the loop is given, its numbers and its
per-epoch outputs, is in pretrain_settings.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from medssl.atomic_files import write_jsonl
from medssl.data.intensity import IntensityMapping
from medssl.methods.base import Method
from medssl.training.batch_feed import ResidentFeed, StreamedFeed
from medssl.training.checkpoint_clock import CheckpointClock
from medssl.training.distributed import Distributed
from medssl.training.epoch import Checkpointing, Compute, EpochTrainer, StepInputs, StepPlan
from medssl.training.online_probe import ProbeData
from medssl.training.pretrain_settings import EpochOutputs, PretrainSettings
from medssl.training.pretraining_curve import PretrainingCurve
from medssl.training.resume import Resumed, RunCheckpoint, new_training_state
from medssl.training.speed import SpeedOptions
from medssl.training.stop_signals import StopSignals
from medssl.training.val_selection import ValSelection, selected_epoch, selected_val_score

log = logging.getLogger(__name__)


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
    """Train `method` on `images` (uint8 or uint16 `(N, C, H, W)`) and return its per-epoch
    records. What the steps read (`feed`: None keeps `images` resident on `device`;
    `intensity`; `labels`, for methods that train on them) travels as `StepInputs`; what each
    epoch's end does besides its checkpoint (`selection`, `curve`, `kept_encoder`,
    `on_epoch_end`) as `EpochOutputs`. Under torchrun (`distributed`) every process draws the
    same batch order and trains on its share; only the main process writes. SIGTERM, SIGUSR1
    and Ctrl-C stop it after the current step with a checkpoint (`RunStopped`)."""
    if not method.trains:
        log.info("%s trains nothing: pretraining skipped", type(method).__name__)
        return []
    outputs = EpochOutputs(
        run_dir=Path(run_dir),
        selection=selection,
        curve=curve,
        kept_encoder=kept_encoder,
        on_epoch_end=on_epoch_end,
    )
    inputs = StepInputs(
        feed=feed if feed is not None else ResidentFeed(images, device),
        augmentation=augmentation,
        labels=labels.to(device) if labels is not None else None,
        intensity=intensity,
        probe_data=probe_data,
    )
    loop = _prepared_loop(
        method,
        settings,
        inputs=inputs,
        outputs=outputs,
        optimizer_factory=optimizer_factory,
        scheduler_factory=scheduler_factory,
        fingerprint=fingerprint,
        device=device,
        distributed=distributed or Distributed(),
        speed=speed,
    )
    return loop.run()


def _prepared_loop(
    method: Method,
    settings: PretrainSettings,
    *,
    inputs: StepInputs,
    outputs: EpochOutputs,
    optimizer_factory,
    scheduler_factory,
    fingerprint: dict | str,
    device: torch.device,
    distributed: Distributed,
    speed: SpeedOptions | None,
) -> PretrainingLoop:
    """The loop and all its epochs share, built in the order that fixes the random streams,
    restored from the run folder's checkpoint when there is one."""
    outputs.check(settings)
    plan = StepPlan.of(len(inputs.feed), settings, labelled=inputs.labels is not None)
    method.prepare(len(inputs.feed), plan.batch)
    optimizer = optimizer_factory(method, batch_size=plan.batch * plan.accumulate)
    state = new_training_state(
        method=method,
        optimizer=optimizer,
        settings=settings,
        device=device,
        distributed=distributed,
        probe_data=inputs.probe_data,
        selection=outputs.selection,
    )
    scheduler = scheduler_factory(optimizer, epochs=settings.epochs, steps_per_epoch=plan.steps)
    checkpoint = RunCheckpoint(
        run_dir=outputs.run_dir, fingerprint=fingerprint, state=state, distributed=distributed
    )
    resumed = checkpoint.resume(device)
    log.info(
        "Pretraining %s for %d epochs of %d steps (batch %d x %d accumulated, %s on %s)",
        type(method).__name__, settings.epochs, plan.steps, plan.batch, plan.accumulate,
        settings.precision, device,
    )  # fmt: skip
    memory_format = speed.apply(method, device) if speed is not None else None
    clock = CheckpointClock(settings.checkpoint_every)  # the interval runs from here
    trainer = EpochTrainer(
        model=distributed.wrap(method, device),
        state=state,
        inputs=inputs,
        plan=plan,
        scheduler=scheduler,
        compute=Compute(
            device=device,
            distributed=distributed,
            precision=settings.precision,
            memory_format=memory_format,
        ),
        checkpointing=Checkpointing(file=checkpoint, clock=clock),
    )
    return PretrainingLoop(trainer=trainer, settings=settings, outputs=outputs, resumed=resumed)


class PretrainingLoop:
    """The epochs from the one the run resumes at to the last. It owns the epoch log
    (`history`): each epoch's record is appended here, and every checkpoint is handed it."""

    def __init__(
        self,
        *,
        trainer: EpochTrainer,
        settings: PretrainSettings,
        outputs: EpochOutputs,
        resumed: Resumed,
    ) -> None:
        self.trainer = trainer
        self.settings = settings
        self.outputs = outputs
        self.resumed = resumed
        self.history: list[dict] = list(resumed.history)  # this loop's from here on

    def run(self) -> list[dict]:
        """Train the remaining epochs; returns the log of every epoch, this run's and before."""
        settings, compute = self.settings, self.trainer.compute
        first, progress = self.resumed.epochs_done, self.resumed.progress
        bar = tqdm(range(first, settings.epochs), desc="pretrain", unit="epoch", initial=first,
                   total=settings.epochs, disable=not compute.distributed.is_main)  # fmt: skip
        with StopSignals() as stop:
            for epoch in bar:
                progress, seconds = self.trainer.train(epoch, progress, stop, history=self.history)
                record = self._scored(epoch + 1, self.trainer.record(epoch, progress, seconds))
                self._end_epoch(epoch + 1, record)
                if compute.distributed.is_main:
                    bar.set_postfix(_postfix(record))
                progress = None
            bar.close()
            # A signal during the last epoch's bookkeeping: its checkpoint is complete, stop anyway.
            if not compute.distributed.all_true(not stop.requested, compute.device):
                stop.stop(str(self.trainer.checkpointing.file.path))
        if self.outputs.selection is not None:
            self.outputs.selection.restore(self.trainer.state.method)
        _warn_if_collapsed(self.history)
        return self.history

    def _scored(self, done: int, record: dict) -> dict:
        """Epoch `done`'s (1-based) record with its score on val for model selection (before
        the checkpoint, which keeps the best so far) and, on its epochs, the curve's."""
        method, compute, settings = self.trainer.state.method, self.trainer.compute, self.settings
        selection, curve = self.outputs.selection, self.outputs.curve
        selected = (
            selection.end_epoch(method, done, compute.device, settings.precision)
            if selection is not None
            else {}
        )
        scored = (
            curve.score(method, compute.device, settings.precision)
            if compute.distributed.is_main and settings.scores_curve(done)
            else {}
        )
        return {**record, **selected, **scored}

    def _end_epoch(self, done: int, record: dict) -> None:
        """Keep the encoder of epoch `done` when asked, log `record`, checkpoint when due, and
        hand the record on; the epoch log on disk is never ahead of the checkpoint."""
        settings, outputs, compute = self.settings, self.outputs, self.trainer.compute
        main = compute.distributed.is_main
        if main and done in settings.keep_epochs:  # before the checkpoint that passes it
            outputs.keep_encoder(done)
        self.history.append(record)
        checkpoint, clock = self.trainer.checkpointing.file, self.trainer.checkpointing.clock
        saved = clock.due_at_epoch_end(done == settings.epochs, compute.distributed, compute.device)
        if saved:
            checkpoint.save(done, None, history=self.history)
            clock.saved()
        if not main:
            return
        if saved:
            write_jsonl(outputs.run_dir / "train_log.jsonl", self.history)
        if "eval/seconds" in record:
            outputs.curve.draw(self.history, outputs.run_dir)
        if outputs.on_epoch_end is not None:
            outputs.on_epoch_end(record)


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
