"""Sweeps through the real hydra-submitit-launcher: its local executor runs here; the SLURM
config composes (no cluster on this machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hydra import compose, initialize_config_dir

from tests.conftest import CONF, REPO


def test_submitit_local_launcher_runs_a_sweep(tmp_path, medmnist_root):
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hydra/launcher=local",
        "backbone=smallcnn",
        "trainer.epochs=1",
        "trainer.batch_size=128",
        "seed=0,1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted((tmp_path / "sweep").glob("*/results.json"))
    assert len(results) == 2 and all("seed=" in p.parent.name for p in results)
    assert {json.loads(p.read_text())["seed"] for p in results} == {0, 1}
    assert list((tmp_path / "sweep" / ".submitit").iterdir())  # submitit's own job folders


def test_slurm_launcher_config_composes_with_requeue():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra_cfg = compose(
            config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True
        )
    launcher = hydra_cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.max_num_timeout > 0 and launcher.gpus_per_node == 1
