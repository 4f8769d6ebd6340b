"""Shared fixtures: the real config, the genuine MedMNIST folder, and fake MedMNIST caches."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

import medssl.configs  # noqa: F401  registers the schema conf/config.yaml names first

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_MEDMNIST = REPO.parent / "shared" / "data" / "medmnist"
# Every config and every CLI a test starts reads the genuine files, as under `.ci/run`.
os.environ.setdefault("MEDMNIST_ROOT", str(SHARED_MEDMNIST))
# MedMNIST's image stores go to one folder for the session, not beside the shared files.
os.environ.setdefault("MEDSSL_STORE_DIR", tempfile.mkdtemp(prefix="medssl-stores-"))
# Under pytest-xdist each worker, and every process its tests start, gets its share of the cores
# (before torch is imported): otherwise each worker's torch starts a thread per core and they
# contend for them.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _XDIST_WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _XDIST_WORKERS)))


@pytest.fixture(scope="session")
def medmnist_root() -> Path:
    """The folder of genuine MedMNIST files (BreastMNIST 28/64, PneumoniaMNIST 28)."""
    root = Path(os.environ["MEDMNIST_ROOT"])
    if not (root / "breastmnist.npz").exists():
        pytest.fail(f"genuine MedMNIST files are expected in {root}; set MEDMNIST_ROOT")
    return root


def compose_config(overrides: list[str] | None = None):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


def compose_evaluate(overrides: list[str] | None = None):
    """The config `python -m medssl.cli.evaluate OVERRIDES` runs."""
    import medssl.cli.evaluate  # noqa: F401  registers the `evaluate` config

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides or [])


# The smallest pretraining the config allows on MedMNIST: what tests of its keys compose.
TINY = ["backbone=smallcnn", "trainer.epochs=1", "trainer.batch_size=128"]


def key_of(overrides: list[str], data) -> str:
    """The encoder cache key of `TINY` plus `overrides` pretraining on `data`."""
    import torch

    from medssl.data.label_subset import labelled_subset
    from medssl.pretraining_setup import assemble_pretraining
    from medssl.seeding import seed_everything
    from medssl.study.encoder_cache import key_material, pretraining_key

    cfg = compose_config([*TINY, *overrides])
    seed_everything(cfg.seed)
    labelled = labelled_subset(data.train.labels, cfg.label_frac, cfg.label_seed)
    job, _ = assemble_pretraining(cfg, data, labelled, torch.device("cpu"), "fp32")
    return pretraining_key(key_material(cfg, job, world_size=1))


def run_train(args: list[str], tmp_path: Path, env: dict | None = None, timeout: int = 300):
    """`python train.py ARGS` in a subprocess writing into `tmp_path/run`."""
    cmd = [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={tmp_path / 'run'}", *args]
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        cmd, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def write_fake_medmnist(root: Path, name: str, size: int = 28, n: int = 12, seed: int = 0) -> Path:
    """A tiny `.npz` with the layout, channels and label shape of the real `name` file."""
    import medmnist

    from medssl.data.medmnist_source import npz_filename

    info = medmnist.INFO[name]
    rng = np.random.default_rng(seed)
    n_labels = len(info["label"])
    arrays = {}
    for split in ("train", "val", "test"):
        shape = (n, size, size) if info["n_channels"] == 1 else (n, size, size, 3)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        if info["task"].startswith("multi-label"):
            labels = rng.integers(0, 2, (n, n_labels))
            labels[:n_labels, :] = np.eye(n_labels, dtype=int)[: min(n, n_labels)]
        else:
            labels = (np.arange(n) % n_labels)[:, None]
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    path = root / npz_filename(name, size)
    root.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


# A crop with no rotation, shear, shift or vertical flip: what the unit tests vary one key of.
PLAIN_CROP = {
    "scale": (0.5, 1.0),
    "ratio": (3 / 4, 4 / 3),
    "vflip_p": 0.0,
    "degrees": 0.0,
    "translate": 0.0,
    "shear": 0.0,
    "padding_mode": "border",
    "hflip_p": 0.5,
    "p": 1.0,
}


def plain_crop(**changes):
    from medssl.augment.geometric import RandomResizedCrop

    return RandomResizedCrop(**{**PLAIN_CROP, **changes})


def write_image(path, value: int, shape=(40, 30, 3)):
    """A colour image whose mean encodes `value`, so a decoded pixel tells which file it was."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full(shape, value, dtype=np.uint8)
    image[..., 0] = value  # B in OpenCV's order: becomes the last RGB channel
    image[..., 2] = 255 - value
    assert cv2.imwrite(str(path), image)


# What the pretraining loop runs with where a test says nothing: conf/config.yaml's trainer
# values, but a checkpoint every epoch (`checkpoint_every: null`), so short runs resume between
# epochs.
LOOP = {
    "accumulate_steps": 1,
    "collapse_min_std": 0.01,
    "collapse_min_rank": 2.0,
    "eval_every": None,
    "keep_epochs": (),
    "checkpoint_every": None,
}


def loop_settings(**values):
    from medssl.training.pretrain_settings import PretrainSettings

    return PretrainSettings(**{**LOOP, **values})
