"""One run in five stages: start (refuse a bad config, seed) → build (data, labelled subset,
pretraining setup) → pretrain or reuse the encoder → evaluate → finish (results.json).

Every component is built from its config group with `hydra.utils.instantiate`
(`pretraining_setup.assemble_pretraining`); this module wires the stages together (what they
hand each other: run_context.py; the experiment tracker around them: run_tracking.py) and
writes into the run folder Hydra made, whose config.yaml the job runner (`study.job.run_job`)
has written.
Pretraining goes through the encoder cache (`study.encoder_cache`) unless
`cache.enabled=false`, so jobs that differ only in what evaluation sees share one encoder.
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
from medssl.evaluation.build import check_evaluation
from medssl.evaluation.interruption import stop_on_signals
from medssl.evaluation.run_summary import write_results
from medssl.evaluation.runner import evaluate_as_configured
from medssl.pretraining_setup import assemble_pretraining
from medssl.results_record import reference_record, results_record
from medssl.run_context import RunContext, RunParts, cache_dir
from medssl.run_tracking import tracked
from medssl.seeding import seed_everything
from medssl.study.encoder_cache import (
    Pretrained,
    key_material,
    pretrain_or_reuse,
    pretraining_key,
)
from medssl.study.run_record import identity
from medssl.training.budget import check_budget
from medssl.training.device import resolve_precision, set_deterministic
from medssl.training.distributed import Distributed, setup_distributed, teardown_distributed
from medssl.training.val_selection import selected_epoch

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path, choices: dict[str, str] | None = None) -> dict:
    """Returns the results (also in `run_dir/results.json`); under torchrun only the main
    process evaluates and writes, the others return an empty dict after pretraining.
    `choices` (the config group options, from Hydra) go into results.json as `config/<group>`."""
    distributed, device = setup_distributed(cfg.trainer.device)
    try:
        run_dir = Path(distributed.broadcast(str(run_dir)))
        return _run(cfg, run_dir=run_dir, distributed=distributed, device=device, choices=choices)
    finally:
        teardown_distributed()


def _run(
    cfg: DictConfig,
    *,
    run_dir: Path,
    distributed: Distributed,
    device: torch.device,
    choices: dict[str, str] | None,
) -> dict:
    started = time.perf_counter()
    context = _start(cfg, run_dir=run_dir, distributed=distributed, device=device, choices=choices)
    parts = _build(context)
    with tracked(context, parts) as tracker:
        pretrained, pretrain_seconds = _pretrain(context, parts, tracker=tracker)
        if not distributed.is_main:
            return {}
        metrics = _evaluate(context, parts, pretrained=pretrained)
    return _finish(
        context,
        parts,
        pretrained=pretrained,
        metrics=metrics,
        tracker=tracker,
        pretrain_seconds=pretrain_seconds,
        total_seconds=time.perf_counter() - started,
    )


def _start(
    cfg: DictConfig,
    *,
    run_dir: Path,
    distributed: Distributed,
    device: torch.device,
    choices: dict[str, str] | None,
) -> RunContext:
    """Refuse a bad budget, label fraction, seed or optimizer before anything runs; seed."""
    label_frac = check_label_frac(cfg.label_frac)
    check_seed(cfg.seed, "seed")
    check_seed(cfg.label_seed, "label_seed")
    check_budget(cfg.trainer.epochs, cfg.trainer.batch_size, cfg.trainer.accumulate_steps)
    check_optimizer(cfg)
    check_evaluation(cfg.eval, cfg.eval_outputs)
    set_deterministic(cfg.trainer.deterministic)
    seed_everything(cfg.seed)
    return RunContext(
        cfg=cfg,
        run_dir=run_dir,
        device=device,
        precision=resolve_precision(cfg.trainer.precision, device),
        distributed=distributed,
        label_frac=label_frac,
        cache_dir=cache_dir(cfg),
        choices=choices or {},
    )


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


def _build(context: RunContext) -> RunParts:
    """The data, the labelled subset (saved as labelled_indices.json), the pretraining setup and
    its cache key."""
    cfg, label_frac = context.cfg, context.label_frac
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
    setup, data = assemble_pretraining(
        cfg,
        data,
        labelled,
        context.device,
        context.precision,
        online_probe=cfg.trainer.online_probe and context.distributed.is_main,
    )
    if context.distributed.is_main:
        write_json(
            context.run_dir / "labelled_indices.json",
            {"label_frac": label_frac, "label_seed": cfg.label_seed, "indices": labelled.tolist()},
        )
    material = key_material(cfg, setup, context.distributed.world_size)
    return RunParts(
        data=data, labelled=labelled, setup=setup, material=material, key=pretraining_key(material)
    )


def _pretrain(context: RunContext, parts: RunParts, *, tracker) -> tuple[Pretrained, float]:
    """Pretrain, or reuse the encoder an earlier job of the same recipe pretrained; returns it
    and the seconds this took."""
    started = time.perf_counter()
    pretrained = pretrain_or_reuse(
        parts.setup,
        material=parts.material,
        key=parts.key,
        cache_dir=context.cache_dir,
        run_dir=context.run_dir,
        device=context.device,
        encoder_record={
            "backbone": OmegaConf.to_container(context.cfg.backbone, resolve=True),
            "in_chans": parts.data.channels,
            "input_size": parts.data.image_size,
        },
        distributed=context.distributed,
        label_frac=context.label_frac,
        on_epoch_end=tracker.log_epoch if tracker is not None else None,
    )
    return pretrained, time.perf_counter() - started


def _evaluate(context: RunContext, parts: RunParts, *, pretrained: Pretrained) -> dict:
    """The protocols on the labelled subset: val picks, test is read once."""
    again = (
        f"the encoder is saved ({pretrained.encoder_path}), so the same command evaluates "
        f"it again without pretraining."
    )
    with stop_on_signals(again):
        return evaluate_as_configured(
            context.cfg,
            parts.setup.method.encoder,
            parts.data,
            parts.labelled,
            run_dir=context.run_dir,
            device=context.device,
            precision=context.precision,
            augmentation=parts.setup.augmentation,
            head=trained_head(parts.setup, parts.data, pretrained),
            # Features are worth keeping only for an encoder other jobs share: one trained
            # without labels (every label fraction reuses it) or not trained at all.
            cache_dir=None if parts.setup.method.uses_labels else context.cache_dir,
        )


def _finish(
    context: RunContext,
    parts: RunParts,
    *,
    pretrained: Pretrained,
    metrics: dict,
    tracker,
    pretrain_seconds: float,
    total_seconds: float,
) -> dict:
    """results.json, and the tracker's figures and summary."""
    results = results_record(
        metrics,
        parts.data,
        parts.labelled,
        identity=identity(context.cfg, context.choices),
        method=type(parts.setup.method).__name__,
        backbone=context.cfg.backbone.name,
        label_frac=context.label_frac,
        device=context.device,
        precision=context.precision,
        total_seconds=total_seconds,
        details={
            "pretrain_dataset": parts.setup.source_name,
            "world_size": context.distributed.world_size,
            "n/pretrain": len(parts.setup.train),
            **pretrained.record(),
            **reference_record(parts.data),
            "time/pretrain_s": pretrain_seconds,
        },
    )
    write_results(context.run_dir, results)
    if tracker is not None:
        tracker.log_figures(context.run_dir / "figures")
        tracker.finish(results)
    return results


def trained_head(setup, data: DatasetSplits, pretrained: Pretrained) -> dict:
    """The classifier head the method trained on `data`'s labels, for the classifier protocol
    (none for SSL methods, nor for one trained on another dataset's labels)."""
    head = setup.method.classifier_head
    if head is None or setup.source_name != data.name:
        return {}
    return {"head": head, "head_info": {"selected_epoch": selected_epoch(pretrained.history)}}
