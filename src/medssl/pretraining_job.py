"""A run's pretraining, assembled once from its config: method, views, images and budget.

`train.py` (through run.py), `benchmarks/ssl_quality.py` and the tests all build pretraining
with `assemble_pretraining`, so a method is wired to its data in one place: the backbone sized to
the images, label-using methods given the task and only the labelled subset, stored-image
transforms (CLAHE) applied once, the online probe fed with the labelled images, and a method
that selects on val given the val split of the dataset its labels come from.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from torch import nn

from medssl.data.prepare import prepare_dataset
from medssl.data.pretrain_source import check_pretrain_source, pretraining_split
from medssl.data.splits import DatasetSplits, Split
from medssl.errors import MedsslError
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.methods.base import Method, task_arguments
from medssl.training.distributed import Distributed
from medssl.training.online_probe import ProbeData, online_probe_data
from medssl.training.pretrain import pretrain
from medssl.training.speed import SpeedOptions
from medssl.training.val_selection import ValSelection

log = logging.getLogger(__name__)


def build(cfg: DictConfig, key: str, **kwargs):
    log.info("Instantiating %s <%s>", key, cfg[key]._target_)
    try:
        return instantiate(cfg[key], **kwargs)
    except InstantiationException as error:
        # Hydra wraps what the target raised; a user error should reach the user unwrapped.
        if isinstance(error.__cause__, MedsslError):
            raise error.__cause__ from None
        raise


@dataclass
class PretrainingJob:
    """Everything `training.pretrain.pretrain` needs, and what the encoder cache keys on."""

    method: Method
    augmentation: nn.Module
    train: Split  # the images pretraining sees (labels are read only when `uses_labels`)
    uses_labels: bool
    source_name: str
    optimizer_factory: object
    scheduler_factory: object
    epochs: int
    batch_size: int
    accumulate_steps: int
    precision: str
    seed: int
    probe_data: ProbeData | None
    collapse_min_std: float
    collapse_min_rank: float
    speed: SpeedOptions
    selection: ValSelection | None = None  # model selection on val (methods that select)

    @property
    def trains(self) -> bool:
        return self.method.trains

    def run(
        self,
        run_dir: Path,
        fingerprint: dict | str,
        device: torch.device,
        *,
        distributed: Distributed | None = None,
        on_epoch_end=None,
    ) -> list[dict]:
        """Pretrain (or resume) with checkpoints and the epoch log in `run_dir`; a checkpoint
        there resumes only when it was written with the same `fingerprint`."""
        train = self.train.to(device)
        return pretrain(
            self.method,
            self.augmentation,
            train.images,
            train.labels if self.uses_labels else None,
            optimizer_factory=self.optimizer_factory,
            scheduler_factory=self.scheduler_factory,
            epochs=self.epochs,
            batch_size=self.batch_size,
            device=device,
            precision=self.precision,
            seed=self.seed,
            run_dir=run_dir,
            fingerprint=fingerprint,
            accumulate_steps=self.accumulate_steps,
            probe_data=self.probe_data,
            collapse_min_std=self.collapse_min_std,
            collapse_min_rank=self.collapse_min_rank,
            on_epoch_end=on_epoch_end,
            distributed=distributed,
            speed=self.speed,
            selection=self.selection,
        )


def assemble_pretraining(
    cfg: DictConfig,
    data: DatasetSplits,
    labelled: torch.Tensor,
    device: torch.device,
    precision: str,
    *,
    online_probe: bool | None = None,
) -> tuple[PretrainingJob, DatasetSplits]:
    """The pretraining `cfg` describes for the evaluation dataset `data` and its labelled subset,
    and `data` after the stored-image transforms (the images evaluation must see too).

    Seed the global generators first (the backbone's and heads' initialisation draws from them).
    `online_probe` defaults to `cfg.trainer.online_probe`; the probe runs only when pretraining
    sees `data.train`, whose labels it reads."""
    backbone = build(cfg, "backbone", in_chans=data.channels, input_size=data.image_size)
    method_class = get_class(cfg.method._target_)
    uses_labels = method_class.uses_labels
    # pretrain_dataset (null: dataset itself) supplies the pretraining images.
    source = build(cfg, "pretrain_dataset") if cfg.get("pretrain_dataset") is not None else None
    if source is not None:
        check_pretrain_source(source, data, uses_labels)
    task_data = source if source is not None else data
    # An unlabelled pretraining source has no task; only label-using methods ask for one.
    task_kwargs = (
        task_arguments(method_class, task_data.task, task_data.num_classes) if uses_labels else {}
    )
    method = build(cfg, "method")(backbone=backbone, **task_kwargs).to(device)
    augmentation = build(cfg, "augmentation").to(device)
    # Deterministic stored-image transforms (CLAHE) run once, on every split the encoder sees.
    data = prepare_dataset(augmentation, data)
    source = prepare_dataset(augmentation, source) if source is not None else None
    if online_probe is None:
        online_probe = bool(cfg.trainer.online_probe)
    probe_data = (
        online_probe_data(data, labelled, uses_labels) if online_probe and source is None else None
    )
    selection = None
    if method.selects_on_val:
        labels_from = source if source is not None else data
        selection = ValSelection(
            labels_from.val.images,
            labels_from.val.labels,
            score=functools.partial(_val_auroc, labels_from.task),
            batch_size=cfg.trainer.eval_batch_size,
        )
    job = PretrainingJob(
        method=method,
        augmentation=augmentation,
        train=pretraining_split(source, data, labelled, uses_labels),
        uses_labels=uses_labels,
        source_name=task_data.name,
        optimizer_factory=instantiate(cfg.optimizer),
        scheduler_factory=instantiate(cfg.scheduler),
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        accumulate_steps=cfg.trainer.accumulate_steps,
        precision=precision,
        seed=cfg.seed,
        probe_data=probe_data,
        collapse_min_std=cfg.trainer.collapse_min_std,
        collapse_min_rank=cfg.trainer.collapse_min_rank,
        speed=instantiate(cfg.trainer.speed),
        selection=selection,
    )
    return job, data


def _val_auroc(task: str, labels, logits) -> float:
    """The AUROC every protocol reports, so selection and evaluation agree."""
    return auroc(task, labels, logits_to_probs(task, logits))
