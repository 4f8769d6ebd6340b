"""The pretraining loop's settings and per-epoch scorers, read from a run config.

`pretrain_settings` takes the loop's numbers from `trainer.*` and `seed`; `val_selection`
scores a method that selects its epoch on val by the AUROC every protocol reports;
`pretraining_curve` holds `trainer.eval_every`'s probes. pretraining_setup.py assembles them
into a run's pretraining.
"""

from __future__ import annotations

import functools

import torch
from omegaconf import DictConfig, OmegaConf

from medssl.components import build_node
from medssl.configs import config_dir
from medssl.data.splits import DatasetSplits
from medssl.evaluation.calibration import logits_to_probs
from medssl.evaluation.metrics import auroc
from medssl.training.pretrain_settings import PretrainSettings
from medssl.training.pretraining_curve import PretrainingCurve
from medssl.training.val_selection import ValSelection


def val_selection(cfg: DictConfig, labels_from: DatasetSplits) -> ValSelection:
    """Model selection on the val split of the dataset the method's labels come from, by the
    AUROC every protocol reports."""
    return ValSelection(
        labels_from.val.images,
        labels_from.val.labels,
        score=functools.partial(_val_auroc, labels_from.task),
        batch_size=cfg.trainer.eval_batch_size,
        intensity=labels_from.intensity,
    )


def pretrain_settings(cfg: DictConfig, precision: str) -> PretrainSettings:
    trainer = cfg.trainer
    return PretrainSettings(
        epochs=trainer.epochs,
        batch_size=trainer.batch_size,
        precision=precision,
        seed=cfg.seed,
        accumulate_steps=trainer.accumulate_steps,
        collapse_min_std=trainer.collapse_min_std,
        collapse_min_rank=trainer.collapse_min_rank,
        eval_every=trainer.eval_every,
        keep_epochs=tuple(trainer.keep_epochs),
        checkpoint_every=trainer.checkpoint_every,
    )


def pretraining_curve(
    cfg: DictConfig, data: DatasetSplits, labelled: torch.Tensor
) -> PretrainingCurve:
    """`trainer.eval_every`'s probes on the evaluation dataset's labelled subset: the `knn` and
    `linear` protocols as the run's `eval` config sets them, else as conf/eval/ does."""
    probes = {}
    for name in ("knn", "linear"):
        node = cfg.eval.get(name) or OmegaConf.load(config_dir() / "eval" / f"{name}.yaml")[name]
        probes[name] = build_node(node, f"eval.{name}")
    return PretrainingCurve(
        probes=probes,
        train_images=data.train.images[labelled],
        train_labels=data.train.labels[labelled],
        val_images=data.val.images,
        val_labels=data.val.labels,
        task=data.task,
        num_classes=data.num_classes,
        batch_size=cfg.trainer.eval_batch_size,
        intensity=data.intensity,
    )


def _val_auroc(task: str, labels, logits) -> float:
    """The AUROC every protocol reports, so selection and evaluation agree."""
    return auroc(task, labels, logits_to_probs(task, logits))
