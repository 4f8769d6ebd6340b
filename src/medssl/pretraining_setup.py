"""A run's pretraining, assembled once from its config: method, views, images and budget.

`train.py` (through run.py), `benchmarks/ssl_quality.py` and the tests all build pretraining
with `assemble_pretraining`, so a method is wired to its data in one place: the backbone sized to
the images, label-using methods given the task and only the labelled subset, stored-image
transforms (CLAHE) applied once, the online probe fed with the labelled images, and a method
that selects on val given the val split of the dataset its labels come from (the loop's
settings and per-epoch scorers are read from the config by pretraining_loop_config.py).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch import nn

from medssl.components import build, call
from medssl.data.intensity import IntensityMapping
from medssl.data.prepare import prepare_dataset
from medssl.data.pretrain_source import check_pretrain_source, pretraining_split
from medssl.data.splits import DatasetSplits, Split
from medssl.errors import MedsslError
from medssl.methods.base import Method, task_arguments
from medssl.models.backbone import weights_source
from medssl.pretraining_loop_config import pretrain_settings, pretraining_curve, val_selection
from medssl.training.batch_feed import make_feed
from medssl.training.distributed import Distributed
from medssl.training.kept_encoders import link_kept_encoders
from medssl.training.online_probe import ProbeData, online_probe_data
from medssl.training.pretrain import pretrain
from medssl.training.pretrain_settings import PretrainSettings
from medssl.training.pretraining_curve import PretrainingCurve
from medssl.training.speed import SpeedOptions
from medssl.training.val_selection import ValSelection

log = logging.getLogger(__name__)


@dataclass
class PretrainingSetup:
    """Everything `training.pretrain.pretrain` needs, and what the encoder cache keys on."""

    method: Method
    augmentation: nn.Module
    train: Split  # the images pretraining sees (labels are read only when `uses_labels`)
    uses_labels: bool
    source_name: str
    optimizer_factory: object
    scheduler_factory: object
    settings: PretrainSettings
    probe_data: ProbeData | None
    speed: SpeedOptions
    selection: ValSelection | None = None  # model selection on val (methods that select)
    curve: PretrainingCurve | None = None  # trainer.eval_every's probes
    feed: str = "auto"  # trainer.feed: resident | streamed | auto (by size against the budget)
    resident_budget_gib: float | None = None  # null: a share of the device's memory
    intensity: IntensityMapping | None = None  # the pretraining images' mapping to [0, 1]

    @property
    def trains(self) -> bool:
        return self.method.trains

    @property
    def precision(self) -> str:
        return self.settings.precision

    @property
    def seed(self) -> int:
        return self.settings.seed

    def saved_encoder(self, encoder_record: dict, epoch: int | None) -> dict:
        """encoder.pt's content: `encoder_record` (how to build the backbone), the weights and,
        for a method with a classifier, its head, the dataset whose labels it predicts and
        `epoch`, the epoch the weights are from."""
        record = {**encoder_record, **self.method.saved_state()}
        if "head" in record:
            record["head_dataset"] = self.source_name
            record["selected_epoch"] = epoch
        return record

    def copy_epoch_outputs(self, folder: Path, run_dir: Path, history: list[dict]) -> None:
        """Into the job folder `run_dir`, from the folder that pretrained (an encoder-cache
        entry): the kept encoders, and the pretraining curve drawn from its epoch log."""
        link_kept_encoders(folder, run_dir, self.settings.keep_epochs)
        if self.curve is not None and self.curve.draw(history, run_dir) is None:
            log.warning(
                "trainer.eval_every: the encoder pretrained in %s was not scored during "
                "pretraining; cache.enabled=false (or deleting that folder) pretrains it again "
                "with its curve",
                folder,
            )

    def run(
        self,
        run_dir: Path,
        fingerprint: dict | str,
        device: torch.device,
        *,
        distributed: Distributed | None = None,
        on_epoch_end=None,
        encoder_record: dict | None = None,
    ) -> list[dict]:
        """Pretrain (or resume) with checkpoints and the epoch log in `run_dir`; a checkpoint
        there resumes only when it was written with the same `fingerprint`. The encoders kept
        at `settings.keep_epochs` go to `run_dir/encoders/`, built with `encoder_record`."""
        kept = None
        if encoder_record is not None:
            kept = functools.partial(self.saved_encoder, encoder_record)
        feed = None
        if self.trains:
            feed = make_feed(self.train.images, device, self.feed, self.resident_budget_gib)
        return pretrain(
            self.method,
            self.augmentation,
            self.train.images,
            self.train.labels if self.uses_labels else None,
            self.settings,
            optimizer_factory=self.optimizer_factory,
            scheduler_factory=self.scheduler_factory,
            device=device,
            run_dir=run_dir,
            fingerprint=fingerprint,
            distributed=distributed,
            speed=self.speed,
            probe_data=self.probe_data,
            selection=self.selection,
            curve=self.curve,
            kept_encoder=kept,
            on_epoch_end=on_epoch_end,
            feed=feed,
            intensity=self.intensity,
        )


def assemble_pretraining(
    cfg: DictConfig,
    data: DatasetSplits,
    labelled: torch.Tensor,
    device: torch.device,
    precision: str,
    *,
    online_probe: bool | None = None,
) -> tuple[PretrainingSetup, DatasetSplits]:
    """The pretraining `cfg` describes for the evaluation dataset `data` and its labelled subset,
    and `data` after the stored-image transforms (the images evaluation must see too).

    Seed the global generators first (the backbone's and heads' initialisation draws from them).
    `online_probe` defaults to `cfg.trainer.online_probe`; the probe runs only when pretraining
    sees `data.train`, whose labels it reads."""
    backbone = build(cfg, "backbone", in_chans=data.channels, input_size=data.image_size)
    method_class = get_class(cfg.method._target_)
    check_weights(method_class, backbone, cfg.method._target_)
    uses_labels = method_class.uses_labels
    # pretrain_dataset (null: dataset itself) supplies the pretraining images.
    source = build(cfg, "pretrain_dataset") if cfg.get("pretrain_dataset") is not None else None
    if source is not None:
        check_pretrain_source(source, data, uses_labels)
    task_data = source if source is not None else data
    method = build_method(cfg, method_class, backbone, task_data, source, data, labelled).to(device)
    augmentation = build(cfg, "augmentation").to(device)
    # Deterministic stored-image transforms (CLAHE) run once, on every split the encoder sees.
    data = prepare_dataset(augmentation, data)
    source = prepare_dataset(augmentation, source) if source is not None else None
    if online_probe is None:
        online_probe = bool(cfg.trainer.online_probe)
    probe_data = (
        online_probe_data(data, labelled, uses_labels) if online_probe and source is None else None
    )
    settings = pretrain_settings(cfg, precision)  # refuses bad eval_every and keep_epochs early
    labels_from = source if source is not None else data
    selection = val_selection(cfg, labels_from) if method.selects_on_val else None
    setup = PretrainingSetup(
        method=method,
        augmentation=augmentation,
        train=pretraining_split(source, data, labelled, uses_labels),
        uses_labels=uses_labels,
        source_name=task_data.name,
        optimizer_factory=build(cfg, "optimizer"),
        scheduler_factory=build(cfg, "scheduler"),
        settings=settings,
        probe_data=probe_data,
        speed=build(cfg, "trainer.speed"),
        selection=selection,
        curve=pretraining_curve(cfg, data, labelled) if settings.eval_every is not None else None,
        feed=cfg.trainer.feed,
        resident_budget_gib=cfg.trainer.resident_budget_gib,
        intensity=labels_from.intensity,
    )
    return setup, data


def check_weights(method_class: type, backbone: nn.Module, target: str) -> None:
    """A method that scores pretrained weights (`frozen`) refuses a backbone built without
    them, and the untrained floor (`random`) one built with them: each row means what it says."""
    name = target.rsplit(".", 1)[-1]
    loaded = weights_source(backbone) is not None
    if getattr(method_class, "requires_weights", False) and not loaded:
        raise MedsslError(
            f"{name} scores pretrained weights: set backbone.pretrained=true (timm's, "
            f"from the hub) or backbone.weights=PATH; method=random is the untrained floor."
        )
    if not method_class.trains and not getattr(method_class, "requires_weights", False) and loaded:
        raise MedsslError(
            f"{name} trains nothing, the untrained floor, but the backbone loads weights "
            f"({weights_source(backbone)}); method=frozen scores pretrained weights as they are."
        )


def build_method(
    cfg: DictConfig,
    method_class: type[Method],
    backbone: nn.Module,
    task_data: DatasetSplits,
    source: DatasetSplits | None,
    data: DatasetSplits,
    labelled: torch.Tensor,
) -> Method:
    """`cfg.method` on `backbone`. A label-using method also gets the task of `task_data`, the
    dataset its labels come from, and those labels; an unlabelled pretraining source has no
    task, and other methods ask for none."""
    task_kwargs = {}
    if method_class.uses_labels:
        train_labels = pretraining_split(source, data, labelled, True).labels
        task_kwargs = task_arguments(
            method_class, task_data.task, task_data.num_classes, train_labels
        )
    return call(cfg, "method", backbone=backbone, **task_kwargs)
