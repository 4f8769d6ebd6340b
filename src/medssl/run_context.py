"""What the stages of one run (run.py) hand each other: the checked context every stage reads,
and the parts the build stage makes for pretraining and evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from medssl.data.splits import DatasetSplits
from medssl.pretraining_setup import PretrainingSetup
from medssl.training.distributed import Distributed


def cache_dir(cfg: DictConfig) -> Path | None:
    """Where encoders are shared, or None when `cache.enabled=false`."""
    return Path(cfg.cache.dir).expanduser().resolve() if cfg.cache.enabled else None


@dataclass(frozen=True)
class RunContext:
    """What every stage of one run reads, fixed once `_start` has checked the config."""

    cfg: DictConfig
    run_dir: Path
    device: torch.device
    precision: str  # `trainer.precision` as it resolved on this device
    distributed: Distributed
    label_frac: float  # checked: in (0, 1]
    cache_dir: Path | None  # where encoders are shared; None: `cache.enabled=false`
    choices: dict[str, str]  # the config group options, from Hydra


@dataclass(frozen=True)
class RunParts:
    """What `_build` made: the evaluation data, its labelled subset, the pretraining setup, and
    what shapes that pretraining (`key_material`) with its hash, the encoder's cache key."""

    data: DatasetSplits
    labelled: torch.Tensor
    setup: PretrainingSetup
    material: dict
    key: str
