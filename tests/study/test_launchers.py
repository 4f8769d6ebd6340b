"""Sweeps through the real launcher plugins: joblib's process pool and submitit's local
executor (with two tasks training one model, as a SLURM job with two GPUs would) run here; the
SLURM config composes (no cluster on this machine). submitit-local with one task per job is
exercised by tests/test_study.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from medssl.errors import MedsslError
from medssl.training.device import cpu_threads_per_job
from tests.conftest import CONF, REPO

TINY = ["backbone=smallcnn", "trainer.epochs=1", "eval_outputs.figures=false"]


def multirun(tmp_path, medmnist_root, *args):
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        *TINY,
        *args,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "MEDMNIST_ROOT": str(medmnist_root)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/results.json"))]


def test_joblib_pool_runs_jobs_in_parallel_processes(tmp_path, medmnist_root):
    results = multirun(
        tmp_path, medmnist_root, "hydra/launcher=joblib_pool", "trainer.batch_size=128", "seed=0,1"
    )
    assert sorted(r["seed"] for r in results) == [0, 1]


def test_submitit_job_with_two_tasks_trains_one_model_with_ddp(tmp_path, medmnist_root):
    results = multirun(
        tmp_path,
        medmnist_root,
        "hydra/launcher=local",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.timeout_min=10",  # a hung rendezvous must not outlive the test
        "trainer.batch_size=64",
    )
    (result,) = results  # one job, two processes, one results.json from rank 0
    assert result["world_size"] == 2 and 0.0 <= result["test/linear/auroc"] <= 1.0


def test_slurm_launcher_starts_one_task_per_gpu_and_requeues():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra_cfg = compose(
            config_name="config",
            overrides=["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"],
            return_hydra_config=True,
        )
    launcher = hydra_cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.max_num_timeout > 0 and launcher.tasks_per_node == 4


@pytest.mark.parametrize(
    ("n_jobs", "cores", "threads"),
    [(None, 16, None), (2, 16, 8), (3, 2, 1), (-1, 8, 1), (-2, 8, 1)],
)
def test_parallel_jobs_share_the_cores(n_jobs, cores, threads):
    assert cpu_threads_per_job(n_jobs, cpu_count=cores) == threads


def test_zero_jobs_is_a_clear_error():
    with pytest.raises(MedsslError, match="n_jobs=0"):
        cpu_threads_per_job(0, cpu_count=4)
