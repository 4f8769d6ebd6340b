"""One pretraining per recipe: encoders stored under a hash of exactly what shaped them.

A label-efficiency study evaluates the same self-supervised encoder at every label fraction, so
it needs one pretraining per (method, backbone, pretraining images, augmentation, budget,
seed), not one per setup. `pretraining_key` hashes the resolved PRETRAINING keys of the config
(medssl.config_schema.ROLES), the code that pretrains (medssl.study.code_version) and a digest
of the images it sees (and their labels, for methods that train on labels: their
key then changes with the labelled subset, so they never share across fractions); label
fraction, label seed, evaluation and output paths stay out of it. A method that selects its
epoch on val keys on the val images too; its classifier head is stored in encoder.pt beside
the encoder, so a reused encoder keeps its head.

`pretrain_or_reuse` holds a file lock on the key while it trains, so parallel jobs (joblib,
submitit, a SLURM array) that need the same encoder neither clobber nor duplicate it: one
pretrains in the cache entry (checkpoints there, so a killed job's successor resumes it), the
others wait and reuse. Files are written to temporaries and renamed; `pretraining.json` is
written last and marks the entry complete (cache_entry.py: one entry's files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from medssl.atomic_files import save_torch
from medssl.config_roles import keep_roles
from medssl.config_schema import PRETRAINING
from medssl.data.image_store import array_digest
from medssl.pretraining_setup import PretrainingSetup
from medssl.study.cache_entry import CacheEntry
from medssl.study.code_version import code_version, weights_digest
from medssl.training.distributed import Distributed
from medssl.training.pretrain import pretrain_summary
from medssl.training.val_selection import selected_epoch

log = logging.getLogger(__name__)

# The data groups enter the key by content (the images' digest), not by their config keys.
DATA_GROUPS = ("dataset", "pretrain_dataset")


def tensor_digest(tensor: torch.Tensor) -> str:
    return array_digest(tensor.detach().cpu().numpy())


def split_digest(split) -> str:
    """A split's image digest: the store's (computed when it was built, so a memory-mapped
    split is not read whole), else hashed now; the same value either way."""
    return split.digest or tensor_digest(split.images)


def key_material(cfg: DictConfig, setup: PretrainingSetup, world_size: int) -> dict:
    """What shapes pretraining, as plain data (stored beside the encoder for inspection): the
    PRETRAINING keys of the config (medssl.config_schema.ROLES), the code that pretrains, and
    the images (and labels, for methods that train on them) by content."""
    container = OmegaConf.to_container(cfg, resolve=True)
    outside_data = {k: v for k, v in container.items() if k not in DATA_GROUPS}
    config = keep_roles(outside_data, (PRETRAINING,))
    config["trainer"]["precision"] = setup.precision  # `auto` as it resolved on this machine
    if config["backbone"].get("weights"):
        config["backbone"]["weights"] = weights_digest(config["backbone"]["weights"])
    material = {
        **config,
        "code": code_version(),
        "world_size": world_size,
        "images": split_digest(setup.train),
        "labels": tensor_digest(setup.train.labels) if setup.uses_labels else None,
    }
    if setup.intensity is not None:  # how stored pixels became the model's input (folders)
        material["intensity"] = dataclasses.asdict(setup.intensity)
    if setup.selection is not None:  # only then, so other encoders keep their keys
        material["selection_val"] = tensor_digest(setup.selection.images)
    return material


def encoder_file(setup: PretrainingSetup, encoder_record: dict, history: list[dict]) -> dict:
    """encoder.pt's content: `encoder_record` (how to build the backbone), the weights and, for
    a method with a classifier, its head, the dataset whose labels it predicts and the epoch
    it was taken from."""
    return setup.saved_encoder(encoder_record, selected_epoch(history))


def pretraining_key(material: dict) -> str:
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Pretrained:
    """The outcome of pretrain-or-reuse, for results.json."""

    key: str | None
    reused: bool
    history: list[dict]
    encoder_path: Path
    seconds: float  # how long this encoder took to pretrain (in the job that trained it)
    meta: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The `pretrain/...` keys of results.json."""
        history = self.history
        return {
            "pretrain/cache_key": self.key,
            "pretrain/reused": self.reused,
            "pretrain/encoder_path": str(self.encoder_path),
            "pretrain/seconds": self.seconds,
            "pretrain/probe_label_frac": self.meta.get("probe_label_frac"),
            "pretrain/epochs": len(history),
            "pretrain/final_loss": history[-1]["loss"] if history else None,
            **pretrain_summary(history),
        }


@dataclass(frozen=True)
class PretrainingCall:
    """What `setup.run` needs besides its folder, the same for a cached and an uncached run."""

    material: dict
    device: torch.device
    distributed: Distributed
    encoder_record: dict
    on_epoch_end: object = None

    def run(self, setup: PretrainingSetup, folder: Path) -> tuple[list[dict], float]:
        """The epoch log of pretraining `setup` in `folder`, and the seconds it took."""
        started = time.perf_counter()
        history = setup.run(
            folder,
            self.material,
            self.device,
            distributed=self.distributed,
            on_epoch_end=self.on_epoch_end,
            encoder_record=self.encoder_record,
        )
        return history, time.perf_counter() - started


def pretrain_or_reuse(
    setup: PretrainingSetup,
    *,
    material: dict,
    key: str,
    cache_dir: Path | None,
    run_dir: Path,
    device: torch.device,
    encoder_record: dict,
    distributed: Distributed,
    label_frac: float,
    on_epoch_end=None,
) -> Pretrained:
    """Train `setup` or load its encoder from `cache_dir/<key of material>` into
    `setup.method` (its encoder, and its classifier head if it has one); `material` (from
    `key_material`, hashed by `pretraining_key` into `key`) is also the checkpoints'
    fingerprint.

    Without a cache (`cache_dir=None`) it trains in `run_dir` as a plain run does. The online
    probe of a cached SSL encoder read the labelled subset of the job that trained it (its
    `label_frac` is in pretraining.json); it never sends gradients or draws random numbers that
    the encoder sees, so the encoder is the same whatever fraction trained it, and a job that
    reuses it reports that job's probe history."""
    call = PretrainingCall(material, device, distributed, encoder_record, on_epoch_end)
    run_dir = Path(run_dir)
    if not setup.trains:
        path = _untrained_encoder(setup, call, key, cache_dir, run_dir)
        return Pretrained(key=None, reused=False, history=[], encoder_path=path, seconds=0.0)
    if cache_dir is None:
        history, seconds = call.run(setup, run_dir)
        path = run_dir / "encoder.pt"
        if distributed.is_main:
            save_torch(path, encoder_file(setup, encoder_record, history))
        return Pretrained(key, False, history, path, seconds)
    entry = CacheEntry(Path(cache_dir) / key)
    with entry.lock(distributed.is_main, key):
        reuse = distributed.broadcast(entry.complete() if distributed.is_main else None)
        if reuse:
            log.info("Reusing encoder %s from %s", key, entry.folder)
            if distributed.is_main:
                entry.load_into(setup.method)
        else:
            _pretrain_into(entry, setup, call, key, run_dir, label_frac)
    if not distributed.is_main:
        return Pretrained(key, bool(reuse), [], entry.encoder, 0.0)
    meta = entry.meta()
    path = entry.copy_into(run_dir)
    history = entry.history()
    setup.copy_epoch_outputs(entry.folder, run_dir, history)  # kept encoders, pretraining curve
    return Pretrained(key, bool(reuse), history, path, meta["seconds"], meta)


def _untrained_encoder(
    setup, call: PretrainingCall, key: str, cache_dir: Path | None, run_dir: Path
) -> Path:
    """encoder.pt of a method that trains nothing (`random`, `frozen`): stored once per key in
    the cache and hard-linked into each job's folder (a frozen ViT-B/16 is 0.35 GB a copy), the
    stored one loaded so the job evaluates exactly it; without a cache, written in `run_dir`."""
    path = run_dir / "encoder.pt"
    if not call.distributed.is_main:
        return path
    record = encoder_file(setup, call.encoder_record, [])
    if cache_dir is None:
        save_torch(path, record)
        return path
    entry = CacheEntry(Path(cache_dir) / key)
    with entry.lock(True, key):
        if entry.complete():
            entry.load_into(setup.method)
        else:
            entry.store(
                record, {"key": key, "seconds": 0.0, "epochs": 0, "material": call.material}
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    return entry.copy_into(run_dir)


def _pretrain_into(
    entry: CacheEntry, setup, call: PretrainingCall, key: str, run_dir: Path, label_frac: float
) -> None:
    log.info("Pretraining encoder %s in %s", key, entry.folder)
    history, seconds = call.run(setup, entry.folder)
    if not call.distributed.is_main:
        return
    entry.store(
        encoder_file(setup, call.encoder_record, history),
        {
            "key": key,
            "trained_by": str(run_dir),
            "seconds": seconds,
            "epochs": len(history),
            "probe_label_frac": label_frac if setup.probe_data is not None else None,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "material": call.material,
        },
    )
