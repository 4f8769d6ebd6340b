"""One run: build → pretrain or reuse the encoder → evaluate → write results.

Every component is built from its config group with `hydra.utils.instantiate`
(`pretraining_job.assemble_pretraining`); this module wires the stages together and writes into
the run folder Hydra made. Pretraining goes through the encoder cache (`study.encoder_cache`)
unless `cache.enabled=false`, so jobs that differ only in what evaluation sees share one encoder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from medssl.atomic_files import write_json
from medssl.components import build, call
from medssl.data.class_check import check_classes
from medssl.data.label_subset import check_label_frac, check_seed, labelled_subset
from medssl.data.pretrain_source import check_evaluation_dataset
from medssl.data.splits import DatasetSplits
from medssl.evaluation.interruption import stop_on_signals
from medssl.evaluation.run_summary import write_results
from medssl.evaluation.runner import check_evaluation, evaluate_as_configured
from medssl.pretraining_job import assemble_pretraining
from medssl.results_record import results_record
from medssl.seeding import seed_everything
from medssl.study.encoder_cache import (
    CacheEntry,
    Pretrained,
    key_material,
    pretrain_or_reuse,
    pretraining_key,
)
from medssl.study.job import identity, save_config
from medssl.tracking import flatten
from medssl.training.budget import check_budget
from medssl.training.device import resolve_precision, set_deterministic
from medssl.training.distributed import Distributed, setup_distributed, teardown_distributed
from medssl.training.pretrain import pretrain_summary
from medssl.training.val_selection import selected_epoch

log = logging.getLogger(__name__)


def run_name(run_dir: Path) -> str:
    """A sweep job's folder is named by its overrides; a single run's by its date and time."""
    return run_dir.name if "=" in run_dir.name else f"{run_dir.parent.name}_{run_dir.name}"


def cache_dir(cfg: DictConfig) -> Path | None:
    """Where encoders are shared, or None when `cache.enabled=false`."""
    return Path(cfg.cache.dir).expanduser().resolve() if cfg.cache.enabled else None


def run(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict:
    """Returns the results (also in `run_dir/results.json`); under torchrun only the main
    process evaluates and writes, the others return an empty dict after pretraining.
    `choices` (the config group options, from Hydra) go into results.json as `config/<group>`."""
    distributed, device = setup_distributed(cfg.trainer.device)
    try:
        return _run(cfg, Path(distributed.broadcast(str(run_dir))), distributed, device, choices)
    finally:
        teardown_distributed()


def _run(cfg: DictConfig, run_dir: Path, distributed: Distributed, device, choices) -> dict:
    started = time.perf_counter()
    label_frac, precision = _start(cfg, run_dir, distributed, device)
    data, labelled, job = _build(cfg, label_frac, distributed, device, precision, run_dir)
    material = key_material(cfg, job, distributed.world_size)
    tracker = (
        _start_tracker(cfg, run_dir, choices, _stage(job, cache_dir(cfg), material))
        if distributed.is_main
        else None
    )
    try:
        pretrain_started = time.perf_counter()
        pretrained = _pretrain(cfg, job, data, material, run_dir, distributed, device, tracker)
        pretrain_seconds = time.perf_counter() - pretrain_started
        if not distributed.is_main:
            return {}
        # Evaluate: the protocols on the labelled subset, val picks, test is read once.
        again = (
            f"the encoder is saved ({pretrained.encoder_path}), so the same command evaluates "
            f"it again without pretraining."
        )
        with stop_on_signals(again):
            metrics = evaluate_as_configured(
                cfg,
                job.method.encoder,
                data,
                labelled,
                run_dir=run_dir,
                device=device,
                precision=precision,
                augmentation=job.augmentation,
                head=trained_head(job, data, pretrained),
            )
    except BaseException:
        if tracker is not None:
            tracker.finish(None, failed=True)
        raise
    results = results_record(
        metrics,
        data,
        labelled,
        identity=identity(cfg, choices),
        method=type(job.method).__name__,
        backbone=cfg.backbone.name,
        label_frac=label_frac,
        device=device,
        precision=precision,
        total_seconds=time.perf_counter() - started,
        details={
            "pretrain_dataset": job.source_name,
            "world_size": distributed.world_size,
            "n/pretrain": len(job.train),
            **pretraining_record(pretrained),
            **reference_record(data),
            "time/pretrain_s": pretrain_seconds,
        },
    )
    write_results(run_dir, results)
    if tracker is not None:
        tracker.log_figures(run_dir / "figures")
        tracker.finish(results)
    return results


def _start(cfg: DictConfig, run_dir: Path, distributed: Distributed, device) -> tuple[float, str]:
    """Refuse a bad budget, label fraction, seed or optimizer before anything runs; save the
    config; seed."""
    label_frac = check_label_frac(cfg.label_frac)
    check_seed(cfg.seed, "seed")
    check_seed(cfg.label_seed, "label_seed")
    check_budget(cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.accumulate_steps)
    check_optimizer(cfg)
    check_evaluation(cfg.eval, cfg.eval_outputs)
    if distributed.is_main:
        save_config(cfg, run_dir / "config.yaml")
    set_deterministic(cfg.trainer.deterministic)
    seed_everything(cfg.seed)
    return label_frac, resolve_precision(cfg.trainer.precision, device)


def check_optimizer(cfg: DictConfig) -> None:
    """Build the optimizer and its schedule once on a throwaway layer, so a value they refuse
    (a negative learning rate) is one sentence before the data load, not a traceback after it."""
    optim_log = logging.getLogger("medssl.training.optim")
    level = optim_log.level
    optim_log.setLevel(logging.WARNING)  # the real optimizer logs its rate once, later
    try:
        layer = torch.nn.Linear(1, 1)
        optimizer = call(cfg, "optimizer", layer, batch_size=cfg.trainer.batch_size)
        # Any step count: the schedule's values are checked here, not its length.
        call(cfg, "scheduler", optimizer, epochs=cfg.trainer.epochs, steps_per_epoch=100)
    finally:
        optim_log.setLevel(level)


def _build(
    cfg: DictConfig, label_frac: float, distributed: Distributed, device, precision, run_dir
):
    """The data, the labelled subset (saved as labelled_indices.json) and the pretraining job."""
    data = check_evaluation_dataset(build(cfg, "dataset"))
    labelled = labelled_subset(data.train.labels, label_frac, cfg.label_seed, data.class_names)
    check_classes(data, labelled)  # before hours of pretraining, not after
    log.info(
        "Labelled subset: %d of %d training images (label_frac=%g, label_seed=%d)",
        len(labelled),
        len(data.train),
        label_frac,
        cfg.label_seed,
    )
    job, data = assemble_pretraining(
        cfg,
        data,
        labelled,
        device,
        precision,
        online_probe=cfg.trainer.online_probe and distributed.is_main,
    )
    if distributed.is_main:
        write_json(
            run_dir / "labelled_indices.json",
            {"label_frac": label_frac, "label_seed": cfg.label_seed, "indices": labelled.tolist()},
        )
    return data, labelled, job


def _pretrain(cfg, job, data, material, run_dir, distributed, device, tracker) -> Pretrained:
    """Pretrain, or reuse the encoder an earlier job of the same recipe pretrained."""
    return pretrain_or_reuse(
        job,
        material=material,
        cache_dir=cache_dir(cfg),
        run_dir=run_dir,
        device=device,
        encoder_record={
            "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
            "in_chans": data.channels,
            "input_size": data.image_size,
        },
        distributed=distributed,
        label_frac=check_label_frac(cfg.label_frac),
        on_epoch_end=tracker.log_epoch if tracker is not None else None,
    )


def pretraining_record(pretrained: Pretrained) -> dict:
    history = pretrained.history
    return {
        "pretrain/cache_key": pretrained.key,
        "pretrain/reused": pretrained.reused,
        "pretrain/encoder_path": str(pretrained.encoder_path),
        "pretrain/seconds": pretrained.seconds,
        "pretrain/probe_label_frac": pretrained.meta.get("probe_label_frac"),
        "pretrain/epochs": len(history),
        "pretrain/final_loss": history[-1]["loss"] if history else None,
        **pretrain_summary(history),
    }


def trained_head(job, data: DatasetSplits, pretrained: Pretrained) -> dict:
    """The classifier head the method trained on `data`'s labels, for the classifier protocol
    (none for SSL methods, nor for one trained on another dataset's labels)."""
    head = job.method.classifier_head
    if head is None or job.source_name != data.name:
        return {}
    return {"head": head, "head_info": {"selected_epoch": selected_epoch(pretrained.history)}}


def reference_record(data: DatasetSplits) -> dict:
    """The dataset's published all-labels results at this image size, as
    `reference/<name>/<metric>` and `reference/<name>/source`."""
    return {
        f"reference/{reference['name']}/{key}": value
        for reference in data.references
        if reference.get("size") == data.image_size
        for key, value in reference.items()
        if key not in ("name", "size")
    }


def _stage(job, cache: Path | None, material: dict) -> str:
    """What this job will do, as W&B's job type."""
    if not job.trains:
        return "evaluate (untrained encoder)"
    if cache is not None and CacheEntry(cache / pretraining_key(material)).complete():
        return "evaluate (reused encoder)"
    return "pretrain+evaluate"


def _start_tracker(cfg: DictConfig, run_dir: Path, choices, stage: str):
    if cfg.get("logger") is None:
        return None
    tracker = build(cfg, "logger")
    choices = choices or {}
    # Flat keys (`trainer.epochs`) and the choices (`method: simclr`) side by side.
    config = {**flatten(OmegaConf.to_container(cfg, resolve=True)), **choices}
    # A sweep job's folder is named by its overrides; the sweep is the folder above it.
    sweep = f"{run_dir.parent.parent.name}/{run_dir.parent.name}" if "=" in run_dir.name else None
    tags = [choices[g] for g in ("method", "backbone", "dataset") if g in choices]
    tracker.start(
        config,
        run_dir,
        name=run_name(run_dir),
        group=sweep,
        job_type=stage,
        tags=[*tags, f"label_frac={cfg.label_frac}"],
    )
    return tracker
