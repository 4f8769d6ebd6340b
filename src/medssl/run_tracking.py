"""A run's experiment tracker (`logger`): started on the main process with the run's flat
config, its sweep as the group and what the job will do as its job type, and finished as
failed when pretraining or evaluation raises."""

from __future__ import annotations

import contextlib
from pathlib import Path

from omegaconf import OmegaConf

from medssl.components import build
from medssl.run_context import RunContext, RunParts
from medssl.study.cache_entry import CacheEntry
from medssl.tracking import flatten, sweep_group


def run_name(run_dir: Path) -> str:
    """A sweep job's folder is named by its overrides; a single run's by its date and time."""
    return run_dir.name if "=" in run_dir.name else f"{run_dir.parent.name}_{run_dir.name}"


@contextlib.contextmanager
def tracked(context: RunContext, parts: RunParts):
    """The experiment tracker (main process, when `logger` is set; else None) through
    pretraining and evaluation; finished as failed when either raises."""
    tracker = None
    if context.distributed.is_main:
        tracker = start_tracker(context, job_type=job_type(parts, context.cache_dir))
    try:
        yield tracker
    except BaseException:
        if tracker is not None:
            tracker.finish(None, failed=True)
        raise


def job_type(parts: RunParts, cache: Path | None) -> str:
    """What this job will do, as W&B's job type."""
    if not parts.setup.trains:
        return "evaluate (untrained encoder)"
    if cache is not None and CacheEntry(cache / parts.key).complete():
        return "evaluate (reused encoder)"
    return "pretrain+evaluate"


def start_tracker(context: RunContext, *, job_type: str):
    cfg, run_dir, choices = context.cfg, context.run_dir, context.choices
    if cfg.get("logger") is None:
        return None
    tracker = build(cfg, "logger")
    # Flat keys (`trainer.epochs`) and the choices (`method: simclr`) side by side.
    config = {**flatten(OmegaConf.to_container(cfg, resolve=True)), **choices}
    # A sweep job's folder is named by its overrides; the sweep is the folder above it.
    sweep = sweep_group(run_dir.parent) if "=" in run_dir.name else None
    tags = [choices[g] for g in ("method", "backbone", "dataset") if g in choices]
    tracker.start(
        config,
        run_dir,
        name=run_name(run_dir),
        group=sweep,
        job_type=job_type,
        tags=[*tags, f"label_frac={cfg.label_frac}"],
    )
    return tracker
