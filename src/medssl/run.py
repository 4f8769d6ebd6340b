"""One run: load data, draw the labelled subset, pretrain, evaluate, write results.

Every component is built from its config group with `hydra.utils.instantiate`; this module
only wires them together and writes into the run folder Hydra made.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from medssl.atomic_files import save_torch, write_json
from medssl.augment.pipeline import prepare_dataset
from medssl.data.label_subset import check_label_frac, labelled_subset
from medssl.data.pretrain_source import (
    check_evaluation_dataset,
    check_pretrain_source,
    pretraining_split,
)
from medssl.errors import MedsslError
from medssl.evaluation.runner import build_evaluation, evaluate_encoder
from medssl.evaluation.summary import write_results
from medssl.seeding import seed_everything
from medssl.training.device import resolve_precision
from medssl.training.distributed import Distributed, setup_distributed, teardown_distributed
from medssl.training.online_probe import online_probe_data
from medssl.training.pretrain import pretrain, pretrain_summary

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


def fingerprint(cfg: DictConfig) -> str:
    """What a checkpoint must match to be resumed: everything that shapes training."""
    keys = (
        "method",
        "backbone",
        "augmentation",
        "optimizer",
        "scheduler",
        "seed",
        "label_frac",
        "label_seed",
    )
    container = OmegaConf.to_container(cfg, resolve=True)
    shaped = {k: container[k] for k in keys}
    shaped["dataset"] = {k: v for k, v in container["dataset"].items() if k != "root"}
    if container.get("pretrain_dataset") is not None:
        shaped["pretrain_dataset"] = {
            k: v for k, v in container["pretrain_dataset"].items() if k != "root"
        }
    shaped["trainer"] = {k: cfg.trainer[k] for k in ("epochs", "batch_size", "accumulate_steps")}
    return hashlib.sha256(repr(sorted(shaped.items())).encode()).hexdigest()[:16]


def run_name(run_dir: Path) -> str:
    """A sweep job's folder is named by its overrides; a single run's by its date and time."""
    return run_dir.name if "=" in run_dir.name else f"{run_dir.parent.name}_{run_dir.name}"


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """Returns the results (also in `run_dir/results.json`); under torchrun only the main
    process evaluates and writes, the others return an empty dict after pretraining."""
    distributed, device = setup_distributed(cfg.trainer.device)
    try:
        return _run(cfg, Path(distributed.broadcast(str(run_dir))), distributed, device)
    finally:
        teardown_distributed()


def _run(cfg: DictConfig, run_dir: Path, distributed: Distributed, device) -> dict:
    started = time.perf_counter()
    label_frac = check_label_frac(cfg.label_frac)
    if distributed.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    seed_everything(cfg.seed)
    precision = resolve_precision(cfg.trainer.precision, device)
    tracker = (
        build(cfg, "logger") if cfg.get("logger") is not None and distributed.is_main else None
    )
    if tracker is not None:
        tracker.start(OmegaConf.to_container(cfg, resolve=True), run_dir, name=run_name(run_dir))

    data = check_evaluation_dataset(build(cfg, "dataset"))
    labelled = labelled_subset(data.train.labels, label_frac, cfg.label_seed, data.class_names)
    if distributed.is_main:
        write_json(
            run_dir / "labelled_indices.json",
            {"label_frac": label_frac, "label_seed": cfg.label_seed, "indices": labelled.tolist()},
        )
    log.info(
        "Labelled subset: %d of %d training images (label_frac=%g, label_seed=%d)",
        len(labelled),
        len(data.train),
        label_frac,
        cfg.label_seed,
    )

    backbone = build(cfg, "backbone", in_chans=data.channels, input_size=data.image_size)
    method_cls = get_class(cfg.method._target_)
    # pretrain_dataset (null: dataset itself) supplies the pretraining images.
    source = build(cfg, "pretrain_dataset") if cfg.get("pretrain_dataset") is not None else None
    if source is not None:
        check_pretrain_source(source, data, method_cls.uses_labels)
    task_data = source if source is not None else data
    task_kwargs = (
        {"task": task_data.task, "num_classes": task_data.num_classes}
        if method_cls.uses_labels
        else {}
    )
    method = build(cfg, "method")(backbone=backbone, **task_kwargs).to(device)
    augmentation = build(cfg, "augmentation").to(device)
    # Deterministic stored-image transforms (CLAHE) run once, on every split the encoder sees.
    data = prepare_dataset(augmentation, data)
    source = prepare_dataset(augmentation, source) if source is not None else None

    train = pretraining_split(source, data, labelled, method_cls.uses_labels).to(device)
    # The online probe reads labels of the pretraining images, so only when they are data.train.
    probe_data = (
        online_probe_data(data, labelled, method_cls.uses_labels)
        if (
            cfg.trainer.online_probe and cfg.get("pretrain_dataset") is None and distributed.is_main
        )
        else None
    )
    pretrain_started = time.perf_counter()
    history = pretrain(
        method,
        augmentation,
        train.images,
        train.labels if method_cls.uses_labels else None,
        optimizer_factory=instantiate(cfg.optimizer),
        scheduler_factory=instantiate(cfg.scheduler),
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        device=device,
        precision=precision,
        seed=cfg.seed,
        run_dir=run_dir,
        fingerprint=fingerprint(cfg),
        accumulate_steps=cfg.trainer.accumulate_steps,
        probe_data=probe_data,
        collapse_min_std=cfg.trainer.collapse_min_std,
        collapse_min_rank=cfg.trainer.collapse_min_rank,
        on_epoch_end=tracker.log_epoch if tracker is not None else None,
        distributed=distributed,
    )
    pretrain_seconds = time.perf_counter() - pretrain_started
    if not distributed.is_main:
        return {}
    encoder_path = run_dir / "encoder.pt"
    save_torch(
        encoder_path,
        {
            "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
            "in_chans": data.channels,
            "input_size": data.image_size,
            "state_dict": method.encoder.state_dict(),
        },
    )

    protocols, report_options = build_evaluation(cfg.eval)
    metrics = evaluate_encoder(
        method.encoder,
        data,
        labelled,
        protocols,
        options=report_options,
        run_dir=run_dir,
        device=device,
        precision=precision,
        batch_size=cfg.trainer.eval_batch_size,
    )
    results = {
        **metrics,
        "dataset": data.name,
        "pretrain_dataset": task_data.name,
        "task": data.task,
        "method": method_cls.__name__,
        "backbone": cfg.backbone.name,
        "label_frac": label_frac,
        "seed": cfg.seed,
        "label_seed": cfg.label_seed,
        "device": str(device),
        "precision": precision,
        "world_size": distributed.world_size,
        "n/pretrain": len(train),
        "n/labelled": len(labelled),
        "n/train": len(data.train),
        "n/val": len(data.val),
        "n/test": len(data.test),
        "pretrain/epochs": len(history),
        "pretrain/final_loss": history[-1]["loss"] if history else None,
        **pretrain_summary(history),
        "time/pretrain_s": pretrain_seconds,
        "time/total_s": time.perf_counter() - started,
    }
    write_results(run_dir, results)
    if tracker is not None:
        tracker.finish(results)
    return results
